"""Sign a body the way each forge does, and give the headers that forge sends with it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def forge_headers(
    forge: str, event: str, body: bytes, secret: str, delivery: str
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if forge == "github":
        headers |= {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
        }
    elif forge == "gitlab":
        headers |= {
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": delivery,
            "X-Gitlab-Token": secret,
        }
    elif forge == "bitbucket":
        headers |= {
            "X-Event-Key": event,
            "X-Request-UUID": delivery,
            "X-Hub-Signature": "sha256=" + hex_hmac(secret, body),
        }
    elif forge == "bitbucket-server":
        headers |= {
            "X-Event-Key": event,
            "X-Request-Id": delivery,
            "X-Hub-Signature": "sha256=" + hex_hmac(secret, body),
        }
    elif forge in ("gitea", "forgejo", "gogs"):
        # Each of these also sends the headers of the forges it descends from, as they do.
        family = {
            "forgejo": ["Forgejo", "Gitea", "Gogs"],
            "gitea": ["Gitea", "Gogs"],
            "gogs": ["Gogs"],
        }
        for name in family[forge]:
            headers |= {
                f"X-{name}-Event": event,
                f"X-{name}-Delivery": delivery,
                f"X-{name}-Signature": hex_hmac(secret, body),
            }
        if forge != "gogs":
            headers |= {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
            }
    else:
        raise ValueError(forge)
    return headers


def gitlab_signing_headers(
    body: bytes, token: str, webhook_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """GitLab's signing-token scheme (Standard Webhooks)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = f"{webhook_id}.{stamp}.".encode() + body
    key = base64.b64decode(token[6:]) if token.startswith("whsec_") else token.encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{signature}",
    }
