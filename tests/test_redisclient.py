"""The Redis client hookbuild's processes connect with: a new connection (every work
horse's, after the fork) costs no parse of the installed package's metadata, and a server
that records client names (Redis 7.2 and later) still learns redis-py's version."""

from __future__ import annotations

import asyncio
from importlib import metadata

import pytest
import redis

from runners import redisclient
from runners.aredis import async_twin


def _no_metadata(_name: str) -> str:
    raise AssertionError("a new connection read the installed package's metadata")


def test_new_connections_read_no_package_metadata(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metadata, "version", _no_metadata)
    connection = redisclient.from_url(redis_url)

    async def twin_info() -> dict[str, str | int]:
        twin = async_twin(connection)
        try:
            return await twin.client_info()
        finally:
            await twin.aclose()

    try:
        info = connection.client_info()
    finally:
        connection.close()
    for seen in (info, asyncio.run(twin_info())):
        # Redis 7.0 (Debian's here) has no CLIENT SETINFO; 7.2 and later show the version.
        assert seen.get("lib-ver", redis.__version__) == redis.__version__


def test_a_serving_connection_and_its_asyncio_twin_give_up_after_the_same_retries() -> None:
    """Both answer webhooks (runners/server.py): both must give up in time for the forge."""
    connection = redisclient.from_url("redis://127.0.0.1:1", retries=redisclient.ANSWERING_RETRIES)
    twin = async_twin(connection)
    retries = [client.get_retry() for client in (connection, twin)]
    assert [r.get_retries() if r else None for r in retries] == [redisclient.ANSWERING_RETRIES] * 2
    asyncio.run(twin.aclose())
