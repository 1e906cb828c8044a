"""The tag ledger in Redis: where each image tag points, and a lock per tag.

Every worker, on any machine, decides and pushes a moving or release tag while holding that
tag's lock, so the check ("is my commit newer?") and the push cannot interleave with another
build's.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

from builder.tags.order import TagHolder
from runners.errors import TagLockTimeout
from runners.keys import PREFIX
from runners.records import text

LOCK_TIMEOUT_SECONDS = 900  # longer than any push; a dead worker's lock expires
LOCK_WAIT_SECONDS = 1800


class RedisTagLedger:
    def __init__(self, connection: Redis, prefix: str = PREFIX) -> None:
        self.connection = connection
        self.prefix = prefix

    def _key(self, image: str, tag: str) -> str:
        return f"{self.prefix}:tag:{image}:{tag}"

    def current(self, image: str, tag: str) -> TagHolder | None:
        raw = self.connection.get(self._key(image, tag))
        return TagHolder.from_dict(json.loads(text(raw))) if raw else None

    @contextmanager
    def hold(self, image: str, tag: str) -> Iterator[None]:
        lock = self.connection.lock(
            f"{self._key(image, tag)}:lock",
            timeout=LOCK_TIMEOUT_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )
        # Our own token: redis-py's default, `uuid1()`, makes libuuid start its uuidd
        # daemon, a process of its own, in each work horse that asks first (~5 ms a build).
        if not lock.acquire(token=secrets.token_hex(16)):
            raise TagLockTimeout(
                f"tag {image}:{tag}: another build held its lock for longer than "
                f"{LOCK_WAIT_SECONDS} s, the most a build waits for it"
            )
        try:
            yield
        finally:
            lock.release()

    def record(self, image: str, tag: str, holder: TagHolder) -> None:
        self.connection.set(self._key(image, tag), json.dumps(holder.to_dict()))
