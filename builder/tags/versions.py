"""Release versions of tag refs: `v1.2.3` and `1.2.3-rc.1` parse as semver; the order of
versions is the order in which moving tags (`1`, `1.2`, `latest`) may move."""

from __future__ import annotations

import semver


def parse_version(name: str) -> semver.Version | None:
    """The semver in a tag name (a leading `v` allowed), or None."""
    text = name[1:] if name[:1] in ("v", "V") else name
    try:
        return semver.Version.parse(text)
    except ValueError:
        return None


def is_release(version: semver.Version | None) -> bool:
    return version is not None and not version.prerelease
