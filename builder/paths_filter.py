"""Path filters: does a push's list of changed files concern an image?"""

from __future__ import annotations

from collections.abc import Sequence

from wcmatch import glob

_FLAGS = glob.GLOBSTAR | glob.DOTGLOB


def path_filter_reason(
    changed: Sequence[str], paths: Sequence[str], ignore: Sequence[str]
) -> str | None:
    """None when the changed files pass the filters; else why they do not."""
    if not paths and not ignore:
        return None
    considered = [
        f for f in changed if not (ignore and glob.globmatch(f, list(ignore), flags=_FLAGS))
    ]
    if not considered:
        return "no changed file outside ignore_paths" if changed else "no changed file"
    if paths and not any(glob.globmatch(f, list(paths), flags=_FLAGS) for f in considered):
        return f"no changed file under paths ({', '.join(paths)})"
    return None
