"""The build context as a tar straight from git: no checkout on disk, nothing read from one.

`git archive` writes a context's tree as a tar in milliseconds. Extracting it to disk and
having docker-py tar it again took seconds for a 3,000-file tree (bench/e2e.py), and read
the repository's .dockerignore and Dockerfile from the disk, through any symlink the
repository made (to /proc/self/environ, to /dev/zero). Here every byte comes from git
objects: the Dockerfile and the .dockerignore through `MirrorCache.read_file` (links
followed inside the commit's tree only, sizes bounded), the context by `git archive`.

Where nothing needs changing (the Dockerfile a regular file in the context, no
.dockerignore of the context's own), the tar goes as git wrote it, with the labelled
Dockerfile (see `engine.label_line`) in front under a name of its own and a .dockerignore
naming it and itself, which the engine honours for exactly these two files: it drops both
before the build, so `COPY . .` never sees them. Otherwise the archive is repacked
(builder/build/docker/contextfilter.py): the repository's .dockerignore applied as
docker-py applies it, and the Dockerfile added under a name of its own where it is outside
the context or a link.
"""

from __future__ import annotations

import posixpath
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.build.docker.contextfilter import ignore_patterns, member, repack
from builder.build.docker.labels import label_line
from builder.build.source import MirrorCache
from builder.errors import UnsafePathError
from builder.paths import build_paths

_REGULAR = ("100644", "100755")
_SYMLINK = "120000"


@dataclass(frozen=True)
class StreamedContext:
    tar: Path  # the context as an uncompressed tar, in scratch
    dockerfile: str  # the Dockerfile's name inside the tar
    labels: Mapping[str, str] = field(default_factory=dict)  # still to give the build
    repacked: bool = False  # through the repository's .dockerignore, or with a Dockerfile added


def stream_context(
    mirrors: MirrorCache,
    clone_url: str,
    sha: str,
    context: str,
    dockerfile: str,
    labels: Mapping[str, str],
    target: str | None,
    scratch: Path,
) -> StreamedContext:
    """The context tar for commit `sha` (already in the mirror); `UnsafePathError` or
    `SourceError` with the reason where the commit gives no context to build."""
    paths = build_paths(context, dockerfile)
    # One ls-tree of the context: it must be a directory, and what the Dockerfile and a
    # .dockerignore are in it decides whether git's tar goes as it is.
    names = [".dockerignore", *([paths.in_context] if paths.in_context else [])]
    modes = mirrors.entry_modes(clone_url, sha, paths.context, names)
    if modes is None:
        raise _no_directory(mirrors, clone_url, sha, paths.context)
    # With a target stage the labels go on that stage as build-time labels.
    label_now = bool(labels) and not target
    regular = paths.in_context is not None and modes.get(paths.in_context) in _REGULAR
    tar = scratch / "context.tar"
    name = f".hookbuild-dockerfile-{secrets.token_hex(6)}"
    text = b""
    if label_now or not regular:
        text = mirrors.read_file(clone_url, sha, paths.dockerfile)  # bounded, links in-tree
    if label_now:
        text = text.rstrip(b"\n") + f"\nLABEL {label_line(labels)}\n".encode()
    if ".dockerignore" not in modes and regular:
        with open(tar, "wb") as out:
            if not label_now:
                mirrors.archive_to(clone_url, sha, paths.context, out)
                return StreamedContext(tar, str(paths.in_context), labels)
            out.write(member(name, text))
            out.write(member(".dockerignore", f"{name}\n.dockerignore\n".encode()))
            mirrors.archive_to(clone_url, sha, paths.context, out)  # a tar may go on
        return StreamedContext(tar, name)
    patterns: list[str] = []
    ignore: bytes | None = None
    if ".dockerignore" in modes:
        ignore_path = posixpath.normpath(posixpath.join(paths.context, ".dockerignore"))
        ignore = mirrors.read_file(clone_url, sha, ignore_path)
        patterns = ignore_patterns(ignore)
    added: dict[str, bytes] = {}
    if regular and not label_now:
        name = str(paths.in_context)
    else:  # as docker-py adds a Dockerfile from outside the context, and under its name
        if not label_now:
            name = f".dockerfile.{secrets.token_hex(20)}"
        listed = "\n".join([*(patterns or [".dockerignore"]), name])
        added = {".dockerignore": listed.encode(), name: text}
    if ignore is not None and not added:
        added = {".dockerignore": ignore}  # the file itself, where the repository has a link
    with tempfile.TemporaryFile(dir=scratch) as archive, open(tar, "wb") as out:
        mirrors.archive_to(clone_url, sha, paths.context, archive)
        archive.seek(0)
        repack(archive, out, patterns, name, added)
    return StreamedContext(tar, name, {} if label_now else labels, repacked=True)


def _no_directory(mirrors: MirrorCache, clone_url: str, sha: str, context: str) -> Exception:
    """Why the context is no directory of the commit: a link (never followed: its target
    could be anywhere), or nothing there."""
    parent, base = posixpath.split(context)
    modes = mirrors.entry_modes(clone_url, sha, parent or ".", [base]) or {}
    if modes.get(base) == _SYMLINK:
        return UnsafePathError(
            f"context {context!r} is a symlink in the repository: the context must be a "
            "directory of the commit itself"
        )
    return UnsafePathError(
        f"context {context!r} is not a directory of commit {sha[:12]} (a path through a "
        "symlink is not followed)"
    )
