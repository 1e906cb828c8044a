"""A context tar from `git archive`, with the repository's .dockerignore applied to it.

What docker-py does to a checkout directory (`exclude_paths`, then a tar with the
Dockerfile added where it is outside the context), done to the members of a tar made from
git objects, so that nothing of the repository is read from a disk: a symlink stays a
symlink member, to be resolved by the engine inside the context, never followed here.
The matching is docker-py's (`PatternMatcher.matches`, a port of the engine's), so the
engine gets what `docker build` would send, but its regexes run on RE2: the patterns are
the repository's, and Python's backtracking `re` takes exponential time on some
(`*a*a*a*a*a*a*a*b`); docker-py's cache also holds only 100 of them, recompiling every
pattern for every file beyond that. The number of patterns is bounded too.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, Literal

import re2
from docker.utils.build import Pattern, split_path
from docker.utils.fnmatch import translate

from builder.errors import BuildFailed

# Added members go first: BuildKit takes a body for a tar only when the first member's
# header is whole within its first 1024 bytes (builder/build/docker/context.py).
_FORMAT: Literal[0, 1, 2] = tarfile.GNU_FORMAT
# Real .dockerignore files hold tens of patterns; each costs a match per file.
MAX_PATTERNS = 1000
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the build's error says what was wrong


class IgnoreMatcher:
    """docker-py's `PatternMatcher`, each pattern compiled once, on RE2."""

    def __init__(self, patterns: Sequence[str]) -> None:
        parsed = [p for p in (Pattern(text) for text in patterns) if p.dirs]
        self._patterns = [
            (p.exclusion, len(p.dirs), _compiled(p.cleaned_pattern))
            for p in [*parsed, Pattern("!.dockerignore")]  # docker-py always sends it
        ]

    def matches(self, path: str) -> bool:
        """Is `path` excluded? The last pattern that matches it, or a parent of it, says."""
        path = path.lower()  # docker-py's fnmatch compares in lower case
        parents = split_path(path.rpartition("/")[0])
        matched = False
        for negative, depth, regex in self._patterns:
            hit = regex.match(path) is not None
            if not hit and parents and depth <= len(parents):
                hit = regex.match("/".join(parents[:depth])) is not None
            if hit:
                matched = not negative
        return matched


def _compiled(pattern: str) -> Any:  # an re2 regex
    try:
        return re2.compile(translate(pattern.lower()), _OPTIONS)
    except re2.error as exc:
        raise BuildFailed(f".dockerignore pattern {pattern[:200]!r} cannot be used") from exc


def ignore_patterns(text: bytes) -> list[str]:
    """The patterns of a .dockerignore, as docker-py reads them."""
    lines = (line.strip() for line in text.decode("utf-8", "replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def member(name: str, data: bytes) -> bytes:
    """One regular file as tar bytes (header, data, padding)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info.tobuf(format=_FORMAT) + data + b"\0" * (-len(data) % 512)


def repack(
    source: BinaryIO,
    out: BinaryIO,
    patterns: Sequence[str],
    dockerfile: str,
    added: Mapping[str, bytes],
) -> None:
    """Copy the members of the tar `source` to `out` but those `patterns` exclude (the
    Dockerfile named `dockerfile` always stays, as in docker-py), with the files of
    `added` in front. `.dockerignore`, when in `added`, replaces the repository's own."""
    if len(patterns) > MAX_PATTERNS:
        raise BuildFailed(
            f".dockerignore has {len(patterns):,} patterns, more than the {MAX_PATTERNS:,} allowed"
        )
    matcher = IgnoreMatcher([*patterns, f"!{dockerfile}"])
    for name, data in added.items():
        out.write(member(name, data))
    with (
        tarfile.open(fileobj=source, mode="r|") as tar,
        tarfile.open(fileobj=out, mode="w|", format=_FORMAT) as packed,
    ):
        for info in tar:
            if info.type == tarfile.XGLTYPE or info.name in added:
                continue  # git archive's global header (the commit id), or replaced
            if matcher.matches(info.name):
                continue
            info.pax_headers = {}
            packed.addfile(info, tar.extractfile(info) if info.isfile() else None)
