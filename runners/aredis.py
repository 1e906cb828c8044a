"""An asyncio Redis client on the same server as a synchronous one.

The receiver writes each delivery with one awaited script call, so the event loop serves
other deliveries while Redis answers, instead of parking a thread per request: on this
machine a round trip costs ~0.2 ms, most of it waiting (bench/intake.py).
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry

from runners.redisclient import DRIVER, backoff

_SHARED = ("db", "username", "password", "socket_timeout", "socket_connect_timeout")


def async_twin(connection: Redis, timeout: float = 5.0) -> AsyncRedis:
    kwargs: dict[str, Any] = connection.connection_pool.connection_kwargs
    options = {key: kwargs[key] for key in _SHARED if kwargs.get(key) is not None}
    options["driver_info"] = DRIVER
    retry = connection.get_retry()
    if retry is not None:  # as many retries as `connection`: both give up as soon
        options["retry"] = AsyncRetry(backoff(), retry.get_retries())
    options.setdefault("socket_timeout", timeout)
    options.setdefault("socket_connect_timeout", timeout)
    if "path" in kwargs:
        return AsyncRedis(unix_socket_path=kwargs["path"], **options)
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return AsyncRedis(host=host, port=port, **options)
