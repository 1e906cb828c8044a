"""Bitbucket Cloud: `X-Event-Key: repo:push`, `X-Hub-Signature: sha256=<hex>`,
`X-Request-UUID`. One push may carry several changes; each is its own push event."""

from __future__ import annotations

from typing import Any

from builder.events import PushEvent
from webhooks.errors import MalformedPayload
from webhooks.forges.base import (
    Headers,
    Parsed,
    Payload,
    check_hex_signature,
    field,
    full_name,
    required_str,
)


class BitbucketCloudDriver:
    name = "bitbucket"
    title = "Bitbucket Cloud"
    token_username = "x-token-auth"  # noqa: S105 - a user name, not a secret
    hosted_clone_url: str | None = "https://bitbucket.org/{name}.git"
    hosted_clone_hosts: tuple[str, ...] = ("bitbucket.org",)
    ping_events: frozenset[str] = frozenset()
    tags_once = False

    def event_name(self, headers: Headers) -> str | None:
        return headers.get("x-event-key")

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get("x-request-uuid")

    def repository_name(self, event: str, payload: Payload) -> str | None:
        return full_name(payload)

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        check_hex_signature(
            headers.get("x-hub-signature"), secret, body, "X-Hub-Signature", "sha256="
        )

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed:
        if event != "repo:push":
            return Parsed(ignored=f"{event} events do not build; only repo:push does")
        full_name = required_str(payload, "repository", "full_name")
        changes = field(payload, "push", "changes")
        if not isinstance(changes, list):
            raise MalformedPayload("payload has no push.changes")
        pusher = (
            field(payload, "actor", "username")
            or field(payload, "actor", "nickname")
            or field(payload, "actor", "display_name")
        )
        main = field(payload, "repository", "mainbranch", "name")
        default_branch = main if isinstance(main, str) and main else None
        # The payload carries no clone URL; the config's clone_url wins over this.
        clone_url = self.hosted_clone_url.format(name=full_name) if self.hosted_clone_url else None
        events = tuple(
            _change_event(
                self.name, full_name, clone_url, change, pusher, delivery_id, default_branch
            )
            for change in changes
            if isinstance(change, dict)
        )
        return Parsed(events=events)


def _change_event(
    forge: str,
    full_name: str,
    clone_url: str | None,
    change: dict[str, Any],
    pusher: Any,
    delivery_id: str | None,
    default_branch: str | None,
) -> PushEvent:
    new, old = change.get("new"), change.get("old")
    side = new if isinstance(new, dict) else old
    if not isinstance(side, dict) or not side.get("name"):
        raise MalformedPayload("a push change has neither new nor old ref")
    prefix = "refs/tags/" if side.get("type") == "tag" else "refs/heads/"
    deleted = not isinstance(new, dict)
    message = field(new, "target", "message") if isinstance(new, dict) else None
    return PushEvent(
        forge=forge,
        repository=full_name,
        ref=prefix + str(side["name"]),
        sha="" if deleted else str(field(new, "target", "hash") or ""),
        before=str(field(old, "target", "hash") or "") if isinstance(old, dict) else "",
        clone_url=clone_url,
        deleted=deleted,
        message=message if isinstance(message, str) else None,
        pusher=pusher if isinstance(pusher, str) else None,
        delivery_id=delivery_id,
        default_branch=default_branch,
    )
