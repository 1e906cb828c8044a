"""Builds nobody pushed: trigger URLs and `hookbuild build`. Pure helpers; the ref is resolved
to a commit by `builder.build.source.resolve_ref` at the edge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from builder.config import RepositoryConfig
from builder.errors import TriggerRequestError
from builder.events import PushEvent

_SHA = re.compile(r"^[0-9a-f]{40}$")


def requested_ref(body: Mapping[str, Any]) -> str | None:
    """The ref a trigger asks for: `{"ref": ...}` or Docker Hub's `source_type`/`source_name`.

    None means the repository's default branch (its HEAD).
    """
    if "ref" in body:
        ref = body["ref"]
        if not isinstance(ref, str) or not ref:
            raise TriggerRequestError('"ref" must be a non-empty string such as "refs/heads/main"')
        return ref
    source_type, source_name = body.get("source_type"), body.get("source_name")
    if source_type is None and source_name is None:
        return None
    if source_type not in ("Branch", "Tag") or not isinstance(source_name, str) or not source_name:
        raise TriggerRequestError('"source_type" must be "Branch" or "Tag", with a "source_name"')
    return f"refs/{'heads' if source_type == 'Branch' else 'tags'}/{source_name}"


def checked_sha(sha: Any) -> str | None:
    if sha is None:
        return None
    if not isinstance(sha, str) or not _SHA.match(sha.lower()):
        raise TriggerRequestError('"sha" must be a full 40-character commit id')
    return sha.lower()


def manual_event(
    repository: RepositoryConfig, clone_url: str, ref: str, sha: str, who: str
) -> PushEvent:
    return PushEvent(
        forge=repository.forge,
        repository=repository.name,
        ref=ref,
        sha=sha,
        clone_url=clone_url,
        pusher=who,
        message=None,
    )
