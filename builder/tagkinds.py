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


def classify(template: str, ref_type: str) -> TagKind:
    names = set(_PLACEHOLDER.findall(template))
    if names & {"sha", "short_sha"}:
        return TagKind.PINNED
    if ref_type != "tag" or not names:
        return TagKind.MOVING
    if names & {"major", "minor"} and not names & {
        "patch",
        "version",
        "prerelease",
        "tag",
        "sourceref",
    }:
        return TagKind.MOVING  # `{major}`, `{major}.{minor}`: shared by every patch release
    return TagKind.RELEASE
