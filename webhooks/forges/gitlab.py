"""GitLab: `X-Gitlab-Event`, `X-Gitlab-Token` (the secret, verbatim) or the signing-token
scheme (`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

from builder.events import ZERO_SHA, PushEvent
from webhooks.errors import SignatureInvalid
from webhooks.forges.base import Headers, Parsed, Payload, field, required_str

PUSH_EVENTS = {"Push Hook": "push", "Tag Push Hook": "tag_push"}
SIGNATURE_MAX_AGE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class GitLabDriver:
    name = "gitlab"
    title = "GitLab"
    token_username = "oauth2"  # noqa: S105 - a user name, not a secret
    hosted_clone_url: str | None = "https://gitlab.com/{name}.git"
    hosted_clone_hosts: tuple[str, ...] = ("gitlab.com",)
    ping_events: frozenset[str] = frozenset()  # "Test" sends a real Push Hook
    tags_once = False

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock

    def event_name(self, headers: Headers) -> str | None:
        return headers.get("x-gitlab-event")

    def delivery_id(self, headers: Headers) -> str | None:
        # A signed delivery is known by its signed `webhook-id` (the same across GitLab's
        # retries): the unsigned Idempotency-Key can be changed by whoever replays a
        # captured delivery within its 5 minutes. `verify` uses the signature scheme
        # whenever `webhook-signature` is there, so this id is the one it checks.
        if headers.get("webhook-signature") is not None:
            return headers.get("webhook-id")
        # Idempotency-Key stays the same across GitLab's retries of one event.
        return headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")

    def repository_name(self, event: str, payload: Payload) -> str | None:
        name = field(payload, "project", "path_with_namespace")
        return name if isinstance(name, str) and name else None

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        signature = headers.get("webhook-signature")
        if signature is not None or signing_token:
            self._verify_signature(headers, body, signing_token or secret)
            return
        token = headers.get("x-gitlab-token")
        if not token:
            raise SignatureInvalid("missing X-Gitlab-Token header: set the webhook's secret token")
        if not hmac.compare_digest(token.encode(), secret.encode()):
            raise SignatureInvalid("X-Gitlab-Token does not match the repository's secret")

    def _verify_signature(self, headers: Headers, body: bytes, token: str) -> None:
        webhook_id = headers.get("webhook-id")
        timestamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not (webhook_id and timestamp and signatures):
            raise SignatureInvalid(
                "missing webhook-id, webhook-timestamp or webhook-signature header"
            )
        # ASCII digits only: `str.isdigit()` takes `²`, which `int()` refuses.
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureInvalid(
                "webhook-timestamp is not a Unix time in seconds (up to 12 ASCII digits)"
            )
        if abs(self.clock() - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
            raise SignatureInvalid("webhook-timestamp is more than 5 minutes away: a replay?")
        # A Standard Webhooks secret (`whsec_<base64>`) is its decoded bytes; any other token
        # is used as it is.
        key = base64.b64decode(token[6:]) if token.startswith("whsec_") else token.encode()
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected):
                return
        raise SignatureInvalid("webhook-signature does not match the repository's signing token")

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed:
        kind = PUSH_EVENTS.get(event)
        if event == "System Hook":
            kind = {"push": "push", "tag_push": "tag_push"}.get(str(payload.get("event_name")))
        if kind is None:
            return Parsed(
                ignored=f"{event} events do not build; only Push Hook and Tag Push Hook do"
            )
        after = required_str(payload, "after")
        checkout = payload.get("checkout_sha")
        deleted = after == ZERO_SHA or not checkout
        # An annotated tag's `after` is the tag object; `checkout_sha` is its commit.
        sha = "" if deleted else str(checkout)
        clone_url = field(payload, "project", "git_http_url") or field(
            payload, "repository", "git_http_url"
        )
        return Parsed(
            events=(
                PushEvent(
                    forge=self.name,
                    repository=required_str(payload, "project", "path_with_namespace"),
                    ref=required_str(payload, "ref"),
                    sha=sha,
                    before=str(payload.get("before") or ""),
                    clone_url=clone_url if isinstance(clone_url, str) else None,
                    deleted=deleted,
                    message=_message(payload, sha or after),
                    pusher=payload.get("user_username") or payload.get("user_name"),
                    delivery_id=delivery_id,
                    default_branch=field(payload, "project", "default_branch") or None,
                ),
            )
        )


def _message(payload: Payload, sha: str) -> str | None:
    for commit in payload.get("commits") or []:
        if isinstance(commit, dict) and commit.get("id") == sha:
            message = commit.get("message")
            return message if isinstance(message, str) else None
    return None
