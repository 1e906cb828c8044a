"""`GET /api/builds/{id}/log?follow=true`: the log as Server-Sent Events while it grows.

One event per line, its line number the event id; a client that reconnects with
`Last-Event-ID` resumes right after the last line it got. A `status` event comes first with
the build's state, and again whenever it changes (queued -> running). The stream ends with
an `end` event once every line has been sent, carrying the build's final record: its
status, duration, worker, tags, pushed digests and error, so that a page following the
log shows the build's end without a reload (webhooks/templates/build.html).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from runners.deliverylog import clip
from runners.records import LOG_PAGE, BuildRecord, BuildStore

POLL_SECONDS = 0.1
KEEPALIVE_SECONDS = 15.0
# Bounds on the `end` event: an error may quote a build's output, and the event is one
# line of JSON every follower gets.
END_TEXT_CHARS = 4096
END_DIGESTS = 200


def end_data(record: BuildRecord | None, lines: int) -> dict[str, Any]:
    """What the `end` event carries: the finished record's fields a page shows, bounded.
    JSON escapes them for the stream; the page sets them as text, never as HTML."""
    if record is None:
        return {"status": "gone", "lines": lines}
    digests = list(record.digests.items())[:END_DIGESTS]
    return {
        "status": record.status.value,
        "lines": lines,
        "duration": record.duration,
        "worker": clip(record.worker or "", END_TEXT_CHARS),
        "tags": [clip(tag, END_TEXT_CHARS) for tag in record.tags[:END_DIGESTS]],
        "digests": {clip(ref, END_TEXT_CHARS): clip(d, END_TEXT_CHARS) for ref, d in digests},
        "error": clip(record.error, END_TEXT_CHARS) if record.error else None,
    }


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
            yield f"event: end\ndata: {json.dumps(end_data(record, sent))}\n\n"
            return
        quiet = 0.0 if lines else quiet + POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"  # proxies close silent connections
            quiet = 0.0
        await asyncio.sleep(POLL_SECONDS)
