"""Gitea, Forgejo and Gogs: one payload shape, told apart by their own headers.

Forgejo also sends Gitea's, Gogs' and GitHub's headers, and Gitea sends Gogs' and GitHub's,
so each endpoint reads only its own forge's (`X-Forgejo-*` on /hooks/forgejo, ...); nothing
is guessed from whichever headers happen to be there.
"""

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


class GiteaFamilyDriver:
    token_username = "oauth2"  # noqa: S105 - a user name, not a secret
    hosted_clone_url: str | None = None  # self-hosted: clone_url or the payload's
    hosted_clone_hosts: tuple[str, ...] = ()
    ping_events: frozenset[str] = frozenset()  # "Test Delivery" sends a real push
    # A tag arrives twice, as a push and as a `create`: build it once (see the receiver).
    tags_once = True

    def __init__(self, name: str, header: str) -> None:
        self.name = name
        self.header = header  # "Gitea", "Forgejo", "Gogs"
        self.title = header

    def event_name(self, headers: Headers) -> str | None:
        return headers.get(f"x-{self.header.lower()}-event")

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get(f"x-{self.header.lower()}-delivery")

    def repository_name(self, event: str, payload: Payload) -> str | None:
        return full_name(payload)

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        header = f"X-{self.header}-Signature"
        check_hex_signature(headers.get(header.lower()), secret, body, header)

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed:
        if event == "push":
            return Parsed(events=(self._push(payload, delivery_id),))
        if event == "create":
            return self._create(payload, delivery_id)
        if event == "delete":
            kind, ref = payload.get("ref_type") or "ref", payload.get("ref")
            return Parsed(ignored=f"{kind} deleted: {ref}; deletions build nothing")
        return Parsed(ignored=f"{event} events do not build; only push (and create for tags) do")

    def _push(self, payload: Payload, delivery_id: str | None) -> PushEvent:
        after = required_str(payload, "after")
        deleted = after == ZERO_SHA
        pusher = field(payload, "pusher", "login") or field(payload, "pusher", "username")
        return PushEvent(
            forge=self.name,
            repository=required_str(payload, "repository", "full_name"),
            ref=required_str(payload, "ref"),
            sha="" if deleted else after,
            before=str(payload.get("before") or ""),
            clone_url=field(payload, "repository", "clone_url"),
            deleted=deleted,
            message=None if deleted else _message(payload, after),
            pusher=pusher if isinstance(pusher, str) else None,
            delivery_id=delivery_id,
            default_branch=field(payload, "repository", "default_branch") or None,
        )

    def _create(self, payload: Payload, delivery_id: str | None) -> Parsed:
        if payload.get("ref_type") != "tag":
            return Parsed(ignored="a new branch builds from its push event, not from create")
        sha = payload.get("sha")
        if not isinstance(sha, str) or len(sha) != 40:
            return Parsed(
                ignored="this create event names no commit (older server); the tag's push builds it"
            )
        sender = field(payload, "sender", "login")
        return Parsed(
            events=(
                PushEvent(
                    forge=self.name,
                    repository=required_str(payload, "repository", "full_name"),
                    ref=f"refs/tags/{required_str(payload, 'ref')}",
                    sha=sha,
                    clone_url=field(payload, "repository", "clone_url"),
                    pusher=sender if isinstance(sender, str) else None,
                    delivery_id=delivery_id,
                ),
            )
        )


def _message(payload: Payload, sha: str) -> str | None:
    message = field(payload, "head_commit", "message")
    if isinstance(message, str):
        return message
    for commit in payload.get("commits") or []:
        if isinstance(commit, dict) and commit.get("id") == sha:
            found = commit.get("message")
            return found if isinstance(found, str) else None
    return None
