"""`GET /api/builds/{id}/log?follow=true`: the log as Server-Sent Events while it grows.

One event per line, its line number the event id; a client that reconnects with
`Last-Event-ID` resumes right after the last line it got. A `status` event comes first with
the build's state, and again whenever it changes (queued -> running). The stream ends with
an `end` event carrying the build's final status, once every line has been sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from runners.records import LOG_PAGE, BuildStore

POLL_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0


def _event(event_id: int, line: str) -> str:
    # A log line has no newlines; `data:` carries it as it is.
    return f"id: {event_id}\ndata: {line}\n\n"


async def follow(store: BuildStore, build_id: str, start: int) -> AsyncIterator[str]:
    """Lines from index `start` on, as they come; then the final status."""
    sent = start
    quiet = 0.0
    status = ""
    while True:
        # The status before the lines: a build that ends in between still has all its
        # lines sent by this read.
        record = await run_in_threadpool(store.get, build_id)
        if record is not None and not record.status.finished and record.status != status:
            status = record.status.value
            yield f"event: status\ndata: {status}\n\n"
        # A page at a time: a long log is never read whole (runners/records.py).
        lines = await run_in_threadpool(store.log_lines, build_id, sent, sent + LOG_PAGE - 1)
        for line in lines:
            yield _event(sent, line)
            sent += 1
        if len(lines) == LOG_PAGE:
            continue  # more to send now
        if record is None or record.status.finished:
            status = record.status.value if record else "gone"
            yield f"event: end\ndata: {json.dumps({'status': status, 'lines': sent})}\n\n"
            return
        quiet = 0.0 if lines else quiet + POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"  # proxies close silent connections
            quiet = 0.0
        await asyncio.sleep(POLL_SECONDS)
