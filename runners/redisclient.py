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
from redis.driver_info import DriverInfo

DRIVER = DriverInfo(lib_version=redis.__version__)


def from_url(url: str, **options: Any) -> Redis:
    return Redis.from_url(url, driver_info=DRIVER, **options)
