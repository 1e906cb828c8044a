"""The build context as a tar straight from git: no checkout on disk, no tarring again.

`git archive` writes a context's tree as a tar in milliseconds. Extracting it to disk and
having docker-py tar it again took seconds for a 3,000-file tree (bench/e2e.py). This tar
goes to the engine as it is, with the labelled Dockerfile (see `engine.label_line`) in
front under a name of its own, and a .dockerignore naming it and itself, which the engine
honours for exactly these two files: it drops both before the build, so `COPY . .` never
sees them.

Only where that changes nothing: the Dockerfile is a regular file inside the context, and
the context has no .dockerignore of its own (docker-py applies its patterns on the client
side, which a tar from git would skip). Otherwise the pipeline extracts a checkout.
"""

from __future__ import annotations

import posixpath
import secrets
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.engine import label_line
from builder.source import MirrorCache

_REGULAR = ("100644", "100755")


@dataclass(frozen=True)
class StreamedContext:
    tar: Path  # the context as an uncompressed tar, in scratch
    dockerfile: str  # the Dockerfile's name inside the tar
    labels: Mapping[str, str] = field(default_factory=dict)  # still to give the build


def _inside(context: str, dockerfile: str) -> str | None:
    """The Dockerfile's path relative to the context; None when it is outside."""
    context, dockerfile = posixpath.normpath(context), posixpath.normpath(dockerfile)
    if any(p.startswith(("/", "../")) or p == ".." for p in (context, dockerfile)):
        return None
    if context == ".":
        return dockerfile
    return dockerfile[len(context) + 1 :] if dockerfile.startswith(context + "/") else None


def stream_context(
    mirrors: MirrorCache,
    clone_url: str,
    sha: str,
    context: str,
    dockerfile: str,
    labels: Mapping[str, str],
    target: str | None,
    scratch: Path,
) -> StreamedContext | None:
    """The context tar for commit `sha` (already in the mirror), or None where a checkout
    is needed (see the module's doc)."""
    relative = _inside(context, dockerfile)
    if relative is None:
        return None
    context, dockerfile = posixpath.normpath(context), posixpath.normpath(dockerfile)
    # One ls-tree of the context: it must be a directory, the Dockerfile a regular file
    # in it, and no .dockerignore of its own.
    modes = mirrors.entry_modes(clone_url, sha, context, [relative, ".dockerignore"])
    if modes is None or modes.get(relative) not in _REGULAR or ".dockerignore" in modes:
        return None
    tar = scratch / "context.tar"
    with open(tar, "wb") as out:
        if not labels or target:
            # With a target stage the labels go on that stage as build-time labels.
            mirrors.archive_to(clone_url, sha, context, out)
            return StreamedContext(tar, relative, labels)
        text = mirrors.read_file(clone_url, sha, dockerfile)
        name = f".hookbuild-dockerfile-{secrets.token_hex(6)}"
        labelled = text.rstrip(b"\n") + f"\nLABEL {label_line(labels)}\n".encode()
        out.write(_member(name, labelled))
        out.write(_member(".dockerignore", f"{name}\n.dockerignore\n".encode()))
        mirrors.archive_to(clone_url, sha, context, out)  # a tar may go on after members
    return StreamedContext(tar, name)


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info.tobuf(format=tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)
