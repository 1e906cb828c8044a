"""A rule's dockerfile and context as paths of the commit's tree, refusing any way out of it.

Nothing here looks at a disk: the build context comes from git objects
(builder/build/streamcontext.py), so a symlink in the repository is never followed on the host.
What a path names in the tree (a directory, a file, a link) the mirror answers.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath

from builder.errors import UnsafePathError

# The most of a Dockerfile or a .dockerignore that a build reads (MirrorCache.read_file):
# real ones are a few kB; a bigger one is refused before it is read.
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BuildPaths:
    context: str  # normalised, relative to the repository root; "." for the root
    dockerfile: str  # normalised, relative to the repository root
    in_context: str | None  # the Dockerfile's path inside the context; None when outside


def _relative(relative: str, what: str) -> str:
    if relative.startswith("/"):
        raise UnsafePathError(f"{what} {relative!r} must be relative to the repository root")
    if ".." in PurePosixPath(relative).parts:
        raise UnsafePathError(f"{what} {relative!r} may not contain '..'")
    if any(c in relative for c in "\n\0"):
        raise UnsafePathError(f"{what} {relative!r} may not hold a newline or a NUL")
    return posixpath.normpath(relative or ".")


def build_paths(context: str, dockerfile: str) -> BuildPaths:
    """Both paths are relative to the repository root, as in `docker build -f FILE CONTEXT`."""
    context = _relative(context, "context")
    dockerfile = _relative(dockerfile, "dockerfile")
    if context == ".":
        inside: str | None = dockerfile
    elif dockerfile.startswith(context + "/"):
        inside = dockerfile[len(context) + 1 :]
    else:
        inside = None
    return BuildPaths(context, dockerfile, inside)
