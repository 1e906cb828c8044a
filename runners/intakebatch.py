"""Write the deliveries that arrive together with one call of the intake script.

Under load a serving process has many deliveries in flight. Each used to make its own
script call, and a call costs more than the work it carries: on this machine ~0.2 ms of
redis-py and the socket in the server, and Redis's own dispatch (bench/intake.py). Here
the deliveries that are ready in one turn of the event loop go to Redis as one call, one
argument each; while that call is out, the next ones gather for the call after it. A lone
delivery goes at once, so nothing waits that did not have to.

The script does each delivery apart (runners/intake.py): one whose write fails gets its
own error and leaves the others written; a call Redis refuses whole (out of memory) gives
each delivery in it the error and writes none. Each delivery's answer waits for its
reply, so what the forge is told was queued is queued, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.commands.core import AsyncScript

# Enough to carry a serving process's whole backlog at 32 connections, small enough that
# one call's arguments stay well under a megabyte (a delivery's is ~3 KB).
MAX_BATCH = 64


class IntakeBatcher:
    """Runs the intake script on an asyncio client, for many deliveries at a time."""

    def __init__(self, script: AsyncScript, max_batch: int = MAX_BATCH) -> None:
        self.script = script
        self.max_batch = max_batch
        self._waiting: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def run(self, packed: bytes) -> Any:
        """This delivery's reply from the script (runners/intake.py's IntakeReply.parse
        reads it); raises what the call raised (a RedisError) when the call failed."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((packed, reply))
        if self._sender is None:
            # A task's first step runs after the callbacks already due in this turn: the
            # deliveries that came in with this one join its call.
            self._sender = asyncio.create_task(self._send())
            self._sender.add_done_callback(self._stopped)
        return await reply

    async def _send(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                replies = await self.script(args=[packed for packed, _ in batch])
                for (_, reply), raw in zip(batch, replies, strict=True):
                    if not reply.done():  # its request may have been cancelled meanwhile
                        reply.set_result(raw)
            except Exception as exc:  # each delivery's answer carries it
                _settle(batch, exc)
            except BaseException:  # cancelled: so are the deliveries it carried
                _settle(batch, None)
                raise
        # No await since the loop's test: a delivery that comes now starts a new sender.
        self._sender = None

    def _stopped(self, sender: asyncio.Task[None]) -> None:
        """A sender cancelled before or during its work leaves no delivery waiting."""
        if self._sender is sender:  # it did not get to the end of the line
            self._sender = None
            _settle(self._waiting, None)
            self._waiting.clear()


def _settle(batch: list[tuple[bytes, asyncio.Future[Any]]], exc: Exception | None) -> None:
    """End each delivery's wait with `exc`, or cancel it."""
    for _, reply in batch:
        if reply.done():
            continue
        if exc is None:
            reply.cancel()
        else:
            reply.set_exception(exc)
