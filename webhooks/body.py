"""Read a request body with a hard cap and a deadline, without holding more than the cap
in memory."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

from builder.config import ServerConfig
from webhooks.errors import BodyTooSlow, ClientGone, PayloadTooLarge
from webhooks.params import MAX_DIGITS


async def read_limited(request: Request, server: ServerConfig) -> bytes:
    """The body, at most `server.max_body_bytes`, within `server.body_timeout_seconds`.

    Raises `PayloadTooLarge`, `BodyTooSlow` (a client that trickles its body holds a
    connection and a task), or `ClientGone` (it hung up: an answer nobody reads, so a quiet
    line rather than a traceback)."""
    limit = server.max_body_bytes
    declared = request.headers.get("content-length", "")
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > MAX_DIGITS or int(declared) > limit)
    ):
        shown = declared if len(declared) <= MAX_DIGITS else f"{declared[:MAX_DIGITS]}…"
        raise PayloadTooLarge(f"body of {shown} bytes is over the limit of {limit}")
    try:
        async with asyncio.timeout(server.body_timeout_seconds):
            return await _read(request, limit)
    except TimeoutError:
        raise BodyTooSlow(
            f"the body did not arrive within {server.body_timeout_seconds:g} s"
        ) from None
    except ClientDisconnect:
        raise ClientGone("the client disconnected before its body was read") from None


async def _read(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
