"""A build context as the body of a BuildKit build request.

A tar file (builder/build/streamcontext.py, what every pipeline build gives) goes as it is. A
directory, which only a caller of the engine's own gives, is packed as
docker-py packs it for the classic builder (its .dockerignore honoured, a Dockerfile from
outside it added under a random name), but in GNU tar format: BuildKit takes the body for a
tar only if the first member's header is whole within its first 1024 bytes, and Python's
default PAX format writes an extra header before every file whose mtime has a fraction,
which a fresh checkout's all have. BuildKit would then read the tar as a Dockerfile.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from docker.api.build import process_dockerfile
from docker.utils.build import exclude_paths

from builder.build.docker.contextfilter import ignore_patterns
from builder.errors import UnsafePathError
from builder.paths import MAX_FILE_BYTES


@contextlib.contextmanager
def context_body(context: Path, dockerfile: Path | str) -> Iterator[tuple[BinaryIO, str]]:
    """The body, and the Dockerfile's name in it."""
    if context.is_file():
        with open(context, "rb") as tar:
            yield tar, str(dockerfile)
        return
    with tempfile.TemporaryFile() as body:
        name = pack_directory(context, dockerfile, body)
        body.seek(0)
        yield body, name


def pack_directory(root: Path, dockerfile: Path | str, out: BinaryIO) -> str:
    """Write `root`'s context to `out` as a tar; return the Dockerfile's name in it."""
    exclude = _dockerignore(root)
    given = Path(dockerfile)
    if (given if given.is_absolute() else root / given).is_symlink():
        # docker-py would read it through the link where it is outside the context.
        raise UnsafePathError(f"dockerfile {str(dockerfile)!r} is a symlink: refused")
    name, outside = process_dockerfile(str(dockerfile), str(root))
    extra: dict[str, str] = {}
    if outside is not None:  # as docker-py does: the copy is added, and ignored by COPY
        extra = {".dockerignore": "\n".join([*(exclude or [".dockerignore"]), name]), name: outside}
    paths = sorted(exclude_paths(str(root), list(exclude), dockerfile=name))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in paths:
            if path in extra:
                continue
            info = tar.gettarinfo(str(root / path), arcname=path)
            if info is None:
                continue  # a socket: nothing a build can copy
            if info.isfile():
                with open(root / path, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
        for member, text in extra.items():
            encoded = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(encoded)
            tar.addfile(info, io.BytesIO(encoded))
    return str(name)


def _dockerignore(root: Path) -> list[str]:
    """The directory's .dockerignore patterns. A link is refused, never followed: a
    repository's `.dockerignore -> /proc/self/environ` would put the reader's secrets in
    the context; so is a file over `MAX_FILE_BYTES` (`-> /dev/zero` is no regular file)."""
    ignore = root / ".dockerignore"
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
        descriptor = os.open(ignore, flags)
    except FileNotFoundError:
        return []
    except OSError as exc:
        why = "is a symlink" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        raise UnsafePathError(f".dockerignore {why}: refused") from exc
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(".dockerignore is not a regular file: refused")
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UnsafePathError(f".dockerignore is more than the {MAX_FILE_BYTES:,} bytes allowed")
    return ignore_patterns(data)
