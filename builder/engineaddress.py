"""Where the Docker engine is, and why it does not answer, in words a user reads.

docker-py reports a missing socket as `('Connection aborted.', FileNotFoundError(2, 'No
such file or directory'))`, nested two exceptions deep. The OS error inside says what
happened; the address says where. Standard library only: builder/errors.py uses it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

# Where docker-py (and the docker CLI) look when DOCKER_HOST is not set.
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
_OS_MODULES = ("builtins", "socket", "ssl")


def engine_address(environ: Mapping[str, str]) -> str:
    """The engine a client made from `environ` talks to."""
    return environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def describe_address(environ: Mapping[str, str]) -> str:
    """`DOCKER_HOST=unix:///x.sock`, or `the default socket unix:///var/run/docker.sock`:
    where the engine was looked for, and why there."""
    given = environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={given}" if given else f"the default socket {DEFAULT_SOCKET}"


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such socket"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return error.strerror or str(error) or type(error).__name__


def unreachable_reason(exc: BaseException) -> str | None:
    """Why the engine could not be reached, from the OS error inside `exc` (in its
    arguments, cause or context, as requests and urllib3 nest it); None when `exc` is no
    failure to reach it (the engine answered, with an error of its own)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        # The OS's own errors; requests' and docker-py's (an APIError: the engine did
        # answer) are OSErrors too, by inheritance only.
        if isinstance(error, OSError) and type(error).__module__ in _OS_MODULES:
            return _os_reason(error)
        pending.extend(arg for arg in error.args if isinstance(arg, BaseException))
        pending.extend(link for link in (error.__cause__, error.__context__) if link)
    text = str(exc)
    for words, reason in (
        ("Connection aborted", "the connection was dropped"),
        ("Connection broken", "the connection broke off"),
        ("Connection refused", "connection refused (nothing listens there)"),
        ("timed out", "no answer in time"),
    ):
        if words in text:
            return reason
    return None
