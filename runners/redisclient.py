"""The Redis client every hookbuild process connects with.

redis-py names itself to the server on each new connection (CLIENT SETINFO) and, unless
told its version, reads it from the installed package's metadata every time: ~4 ms of
parsing per connection. A build's work horse is forked fresh for each build and opens its
connections anew, so every build paid that before its first step. The version is the
package's constant here; a server that records it (Redis 7.2 and later) still learns it.
"""

from __future__ import annotations

from typing import Any

import redis
from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

DRIVER = DriverInfo(lib_version=redis.__version__)

# redis-py's own backoff between retries: 10 ms doubling, each draw jittered, capped at 1 s.
RETRY_BASE_SECONDS = 0.01
RETRY_CAP_SECONDS = 1.0
# A serving process must answer a webhook within the forge's timeout (Gitea's 5 s is the
# shortest: PROTOCOLS.md). redis-py's default of 10 retries waits up to ~5 s for a Redis
# that is away; 7 wait at most ~2.3 s, which still rides over a restart's reconnect.
ANSWERING_RETRIES = 7


def from_url(url: str, retries: int | None = None, **options: Any) -> Redis:
    """`retries`: how many times a command is tried again on a connection error, with
    redis-py's backoff (default: redis-py's own count)."""
    if retries is not None:
        options["retry"] = Retry(backoff(), retries)
    return Redis.from_url(url, driver_info=DRIVER, **options)


def backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)
