"""The face every forge driver shows: everything hookbuild knows of one forge.

Like Zuul's drivers (../shared/STYLE.md), a driver plays up to three roles for its forge:
- trigger: name the event and delivery, find the repository, verify the delivery, parse it
  into forge-independent push events (the receiver's side);
- source: the facts the config and the worker read of the forge, the `builder.forge.Forge`
  protocol (title, token user, hosted clone URL and hosts); builder may not import this
  package, so the entry points hand the registry (`webhooks.forges.DRIVERS`) to the config;
- reporter: the forge's API (commit statuses, pull requests), to come with issue 18.
A new forge is one module here and its line in the registry (webhooks/forges/__init__.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from builder.events import PushEvent
from builder.forge import Forge
from builder.refs import is_sha, ref_problem
from webhooks.errors import MalformedPayload, SignatureInvalid

Headers = Mapping[str, str]  # header names in lower case, as Starlette gives them
Payload = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    """What a delivery means: push events to match against rules, or why it is ignored."""

    events: tuple[PushEvent, ...] = ()
    ignored: str | None = None

    def __post_init__(self) -> None:
        # Here, so that every driver's events are checked before anything acts on them.
        for event in self.events:
            check_push(event)


def check_push(event: PushEvent) -> None:
    """Raise `MalformedPayload` unless the event's ref is one git accepts and its commit
    ids are full ones: a signed payload is still untrusted input."""
    texts = (event.ref, event.sha, event.before, event.clone_url, event.default_branch)
    if any(value is not None and type(value) is not str for value in texts):
        raise MalformedPayload("ref, commit ids, clone URL and default branch must be strings")
    problem = ref_problem(event.ref)
    if problem:
        raise MalformedPayload(problem)
    if event.sha and not is_sha(event.sha):
        raise MalformedPayload(f"the pushed commit {event.sha[:80]!r} is not a full commit id")
    if event.default_branch and ref_problem(f"refs/heads/{event.default_branch}"):
        shown = event.default_branch[:80]
        raise MalformedPayload(f"the default branch {shown!r} is not a valid branch name")
    if event.before and not is_sha(event.before):
        raise MalformedPayload(f"the previous commit {event.before[:80]!r} is not a full commit id")


class ForgeDriver(Forge, Protocol):
    """One forge's driver. Its source role is `Forge`'s attributes (name, title,
    token_username, hosted_clone_url, hosted_clone_hosts); its trigger role follows."""

    # Events the forge sends to test a hook, possibly with no body: answered 200 at once
    # when bodiless, else verified when they name a repository, and never built.
    ping_events: frozenset[str]
    # The forge announces a new tag twice (a push and a `create`): the receiver claims each
    # tag once, so that it builds once.
    tags_once: bool

    def event_name(self, headers: Headers) -> str | None: ...

    def delivery_id(self, headers: Headers) -> str | None: ...

    def repository_name(self, event: str, payload: Payload) -> str | None:
        """The repository's full name as configured, or None when the event names none."""
        ...

    def verify(
        self, headers: Headers, body: bytes, secret: str, signing_token: str | None = None
    ) -> None:
        """Raise `SignatureInvalid` unless the delivery is signed with `secret`
        (or, where the forge has one, its separate `signing_token`)."""
        ...

    def parse(self, event: str, payload: Payload, delivery_id: str | None) -> Parsed: ...

    # The reporter role goes here (issue 18): e.g. `report_status(repository, sha, state,
    # url)` against the forge's API, with the repository's API token. Nothing calls a
    # forge's API yet.


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_hex_signature(
    given: str | None, secret: str, body: bytes, header: str, prefix: str = ""
) -> None:
    """Constant-time check of `prefix + hex(HMAC-SHA256(secret, body))`."""
    if not given:
        raise SignatureInvalid(f"missing {header} header: set the webhook's secret on the forge")
    expected = prefix + hmac_sha256_hex(secret, body)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise SignatureInvalid(
            f"{header} does not match: the webhook's secret differs from the config"
        )


def field(payload: Any, *path: str) -> Any:
    """`payload[a][b]...`, or None where any step is missing or not a mapping."""
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def full_name(payload: Payload) -> str | None:
    """`repository.full_name`, where GitHub, Bitbucket Cloud and the Gitea family keep it."""
    name = field(payload, "repository", "full_name")
    return name if isinstance(name, str) and name else None


def required_str(payload: Payload, *path: str) -> str:
    value = field(payload, *path)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"payload has no {'.'.join(path)}")
    return value
