"""Which of two builds is newer: the order in which moving tags may move.

A moving tag (`latest`, `main`, `1.2`) is only re-pointed by a build of a newer commit:
semver order between release versions, else commit order (ancestry), else commit date for
unrelated histories (a force push). Pure: ancestry is asked of a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import semver

# is_ancestor(a, b): True if commit a is an ancestor of commit b; None if unknown.
Ancestry = Callable[[str, str], bool | None]


@dataclass(frozen=True)
class TagHolder:
    """What a tag points at, as hookbuild last pushed it."""

    sha: str
    committed_at: float
    version: str | None = None
    image_id: str = ""
    digest: str = ""
    build_id: str = ""
    ref: str = ""  # the ref it was pushed for (builder.tagowners); "" if not recorded
    sanitised: bool = False  # its name was made valid from the ref's (`-main` -> `main`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagHolder:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def is_newer(candidate: TagHolder, holder: TagHolder, is_ancestor: Ancestry) -> bool:
    """May `candidate` take a moving tag that `holder` has?"""
    if candidate.sha == holder.sha:
        return True  # a rebuild of the same commit: same place in history
    if candidate.version and holder.version:
        ours, theirs = semver.Version.parse(candidate.version), semver.Version.parse(holder.version)
        if ours != theirs:
            return ours > theirs
    if is_ancestor(holder.sha, candidate.sha):
        return True
    if is_ancestor(candidate.sha, holder.sha):
        return False
    return candidate.committed_at > holder.committed_at
