"""The errors runners/ raises, all under `builder.errors.HookbuildError`, and the one place
that turns a Redis error into ours (`from_redis_error`), as builder/errors.py does for git."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from builder.errors import HookbuildError


class StoreError(HookbuildError):
    """Redis, which holds the queue, the builds' records and the tags' locks, failed or did
    not answer; `transient` when it did not answer (it may be back on a later try)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class TagLockTimeout(StoreError):
    """Another build held a tag's lock for longer than a build waits for it."""


class LogStreamError(HookbuildError):
    """The server refused a build's log, or could not be asked for it."""


class ServerUnreachable(LogStreamError):
    """No answer from the server at all (down, restarting, wrong address)."""


def from_redis_error(exc: RedisError, action: str) -> StoreError:
    """`cannot reach Redis at redis://...: (Error 111 connecting ...)`: `action` and what
    Redis (or redis-py) said."""
    transient = isinstance(exc, RedisConnectionError | RedisTimeoutError)
    return StoreError(f"{action} ({exc})", transient=transient)
