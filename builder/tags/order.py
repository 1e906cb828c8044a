"""Which of two builds is newer: the order in which moving tags may move.

A moving tag (`latest`, `main`, `1.2`) is only re-pointed by a build of a newer commit:
semver order between release versions (even of one commit), else commit order (ancestry),
else commit date for unrelated histories (a force push). Pure: ancestry is asked of a callable.
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
    ref: str = ""  # the ref it was pushed for (builder.tags.owners); "" if not recorded
    sanitised: bool = False  # its name was made valid from the ref's (`-main` -> `main`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagHolder:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def is_newer(candidate: TagHolder, holder: TagHolder, is_ancestor: Ancestry) -> bool:
    """May `candidate` take a moving tag that `holder` has?"""
    return why_older(candidate, holder, is_ancestor) is None


def why_older(candidate: TagHolder, holder: TagHolder, is_ancestor: Ancestry) -> str | None:
    """None when `candidate` may take a moving tag that `holder` has; else why not, in the
    words of the build log. Between two releases semver decides, whatever their commits:
    v1.4.0 and v1.4.1 may name one commit, and `1.4` belongs to v1.4.1 however the builds
    finish."""
    if candidate.version and holder.version:
        ours, theirs = semver.Version.parse(candidate.version), semver.Version.parse(holder.version)
        if ours < theirs:
            return f"it holds a higher version ({holder.version} > {candidate.version})"
        if ours > theirs:
            return None
    if candidate.sha == holder.sha:
        return None  # a rebuild of the same commit: same place in history
    if is_ancestor(holder.sha, candidate.sha):
        return None
    if is_ancestor(candidate.sha, holder.sha):
        return f"it points at a newer commit ({holder.sha[:7]}, a descendant of this one)"
    if candidate.committed_at > holder.committed_at:
        return None
    return f"it points at a commit of a later date ({holder.sha[:7]}, in another history)"
