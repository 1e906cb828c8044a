"""A context tar from `git archive`, with the repository's .dockerignore applied to it.

What docker-py does to a checkout directory (`exclude_paths`, then a tar with the
Dockerfile added where it is outside the context), done to the members of a tar made from
git objects, so that nothing of the repository is read from a disk: a symlink stays a
symlink member, to be resolved by the engine inside the context, never followed here.
The matching is docker-py's own (`PatternMatcher`, a port of the engine's), so the engine
gets what `docker build` would send.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence
from typing import BinaryIO, Literal

from docker.utils.build import PatternMatcher

# Added members go first: BuildKit takes a body for a tar only when the first member's
# header is whole within its first 1024 bytes (builder/buildcontext.py).
_FORMAT: Literal[0, 1, 2] = tarfile.GNU_FORMAT


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
    matcher = PatternMatcher([*patterns, f"!{dockerfile}"])
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
