"""What kind of tag a template makes, which decides how a push may change it.

- `pinned`: names one commit (`{sha}`, `{short_sha}`): always pushed.
- `release`: names one release (`1.2.3`, `v1.2.3` from a tag ref): once it points at an
  image, a different image is refused unless the rule says `overwrite: true`.
- `moving`: shared by several commits over time (`latest`, `main`, `1`, `1.2`, a literal):
  only a build of a newer commit moves it (commit order on a branch, semver order for tags).
"""

from __future__ import annotations

import re
from enum import StrEnum

_PLACEHOLDER = re.compile(r"\{([^{}:]*)(?::[^{}]*)?\}")


class TagKind(StrEnum):
    PINNED = "pinned"
    RELEASE = "release"
    MOVING = "moving"


def is_partial_version(template: str) -> bool:
    """`{major}`, `{major}.{minor}`: shared by every patch release of that line."""
    names = set(_PLACEHOLDER.findall(template))
    full = {"patch", "version", "prerelease", "tag", "sourceref", "sha", "short_sha"}
    return bool(names & {"major", "minor"}) and not names & full


def classify(template: str, ref_type: str) -> TagKind:
    names = set(_PLACEHOLDER.findall(template))
    if names & {"sha", "short_sha"}:
        return TagKind.PINNED
    if ref_type != "tag" or not names or is_partial_version(template):
        return TagKind.MOVING
    return TagKind.RELEASE
