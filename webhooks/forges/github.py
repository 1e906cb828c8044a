"""GitHub: `X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256: sha256=<hex>`."""

from __future__ import annotations

from builder.events import ZERO_SHA, PushEvent
from webhooks.forges.base import (
    Headers,
    Parsed,
    Payload,
    check_hex_signature,
    field,
    full_name,
    required_str,
)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class GitHubDriver:
    name = "github"
    title = "GitHub"
    token_username = "x-access-token"  # noqa: S105 - a user name, not a secret
    hosted_clone_url: str | None = "https://github.com/{name}.git"
    hosted_clone_hosts: tuple[str, ...] = ("github.com",)
    # A hook's ping, which names its repository (verified then) unless it is an
    # organization's.
    ping_events = frozenset({"ping"})
    tags_once = False

    def event_name(self, headers: Headers) -> str | None:
        return headers.get("x-github-event")

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get("x-github-delivery")

    def repository_name(self, event: str, payload: Payload) -> str | None:
        return full_name(payload)

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        # Only the SHA-256 header: the legacy SHA-1 `X-Hub-Signature` is not accepted.
        check_hex_signature(
            headers.get("x-hub-signature-256"),
            secret,
            body,
            "X-Hub-Signature-256",
            prefix="sha256=",
        )

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed:
        if event == "ping":
            return Parsed(ignored="ping: the webhook is set up")
        if event != "push":
            return Parsed(ignored=f"{event} events do not build; only push does")
        after = required_str(payload, "after")
        deleted = bool(payload.get("deleted")) or after == ZERO_SHA
        message = field(payload, "head_commit", "message")
        pusher = field(payload, "pusher", "name") or field(payload, "sender", "login")
        return Parsed(
            events=(
                PushEvent(
                    forge=self.name,
                    repository=required_str(payload, "repository", "full_name"),
                    ref=required_str(payload, "ref"),
                    sha="" if deleted else after,
                    before=str(payload.get("before") or ""),
                    clone_url=field(payload, "repository", "clone_url"),
                    deleted=deleted,
                    message=message if isinstance(message, str) else None,
                    pusher=pusher if isinstance(pusher, str) else None,
                    delivery_id=delivery_id,
                    default_branch=_str(field(payload, "repository", "default_branch")),
                ),
            )
        )
