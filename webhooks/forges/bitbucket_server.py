"""Bitbucket Server / Data Center: `X-Event-Key: repo:refs_changed`,
`X-Hub-Signature: sha256=<hex>`, `X-Request-Id`; "Test connection" sends `diagnostics:ping`.
A repository's name is `PROJECT_KEY/repo-slug`."""

from __future__ import annotations

from typing import Any

from builder.events import ZERO_SHA, PushEvent
from webhooks.errors import MalformedPayload
from webhooks.forges.base import Headers, Parsed, Payload, check_hex_signature, field


class BitbucketServerDriver:
    name = "bitbucket-server"
    title = "Bitbucket Server"
    token_username = "x-token-auth"  # noqa: S105 - a user name, not a secret
    hosted_clone_url: str | None = None  # self-hosted: clone_url or the payload's
    hosted_clone_hosts: tuple[str, ...] = ()
    ping_events = frozenset({"diagnostics:ping"})  # "Test connection"
    tags_once = False

    def event_name(self, headers: Headers) -> str | None:
        return headers.get("x-event-key")

    def delivery_id(self, headers: Headers) -> str | None:
        return headers.get("x-request-id")

    def repository_name(self, event: str, payload: Payload) -> str | None:
        # Pull request events carry the repository under the target ref.
        repository = payload.get("repository") or field(
            payload, "pullRequest", "toRef", "repository"
        )
        key = field(repository, "project", "key")
        slug = field(repository, "slug")
        if isinstance(key, str) and isinstance(slug, str) and key and slug:
            return f"{key}/{slug}"
        return None

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        check_hex_signature(
            headers.get("x-hub-signature"), secret, body, "X-Hub-Signature", "sha256="
        )

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed:
        if event == "diagnostics:ping":
            return Parsed(ignored="diagnostics:ping: the webhook is set up")
        if event != "repo:refs_changed":
            return Parsed(ignored=f"{event} events do not build; only repo:refs_changed does")
        name = self.repository_name(event, payload)
        changes = payload.get("changes")
        if name is None or not isinstance(changes, list):
            raise MalformedPayload(
                "payload has no repository.project.key, repository.slug or changes"
            )
        clone_url = next(
            (
                link.get("href")
                for link in field(payload, "repository", "links", "clone") or []
                if isinstance(link, dict) and link.get("name") == "http"
            ),
            None,
        )
        pusher = field(payload, "actor", "name")
        events = tuple(
            _change_event(self.name, name, change, payload, clone_url, pusher, delivery_id)
            for change in changes
            if isinstance(change, dict)
        )
        return Parsed(events=events)


def _change_event(
    forge: str,
    name: str,
    change: dict[str, Any],
    payload: Payload,
    clone_url: Any,
    pusher: Any,
    delivery_id: str | None,
) -> PushEvent:
    ref = field(change, "ref", "id") or change.get("refId")
    to_hash = str(change.get("toHash") or "")
    if not isinstance(ref, str) or not ref:
        raise MalformedPayload("a change has no ref.id")
    deleted = change.get("type") == "DELETE" or to_hash in ("", ZERO_SHA)
    return PushEvent(
        forge=forge,
        repository=name,
        ref=ref,
        sha="" if deleted else to_hash,
        before=str(change.get("fromHash") or ""),
        clone_url=clone_url if isinstance(clone_url, str) else None,
        deleted=deleted,
        message=None if deleted else _message(payload, to_hash),
        pusher=pusher if isinstance(pusher, str) else None,
        delivery_id=delivery_id,
    )


def _message(payload: Payload, sha: str) -> str | None:
    # Recent Data Center sends the head commit and the commit list; older servers neither.
    if field(payload, "toCommit", "id") == sha:
        message = field(payload, "toCommit", "message")
        return message if isinstance(message, str) else None
    for commit in payload.get("commits") or []:
        if isinstance(commit, dict) and commit.get("id") == sha:
            message = commit.get("message")
            return message if isinstance(message, str) else None
    return None
