"""What `builds` and `events` print: plain functions from
records to lines, so the command modules keep to the commands themselves.

Every cell that holds untrusted text (names, refs, reasons, ids from payloads) goes
through `printable`, as each command's output did before.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from builder.printable import printable
from runners.records import BuildRecord, BuildStatus

Row = Sequence[str]
NO_DELIVERIES = (
    "no deliveries yet; point a forge's webhook at http://HOST:PORT/hooks/FORGE "
    '(README, "Every forge"), or send one again from the forge\'s webhook page'
)


def table(rows: Sequence[Row]) -> list[str]:
    """Columns padded to their widest cell; the last one is left as it is (it may be long)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def pushed_tags(record: BuildRecord) -> list[str]:
    """The tags this build put in the registry: `digests` holds `image:tag` of each tag
    pushed, while `tags` holds every tag its rules gave, pushed or not."""
    prefix = f"{record.image}:"
    return [ref.removeprefix(prefix) for ref in record.digests]


def tags_cell(record: BuildRecord) -> str:
    """Pushed tags as they are; every other tag marked with why it is not in the registry."""
    if not record.status.finished:
        return f"to push: {','.join(record.tags)}" if record.tags else "-"
    pushed = pushed_tags(record)
    left = [tag for tag in record.tags if tag not in pushed]
    if record.status is BuildStatus.SKIPPED:
        return "none pushed (skipped)"
    cell = ",".join(pushed) if pushed else "none pushed"
    if left:
        cell += f" (not pushed: {','.join(left)})"
    return cell


def build_rows(records: Sequence[BuildRecord], state: Callable[[BuildRecord], str]) -> list[Row]:
    rows: list[Row] = [("ID", "REPOSITORY", "REF", "SHA", "STATUS", "DURATION", "TAGS")]
    rows += [
        (
            r.id,
            printable(r.repository),
            printable(r.ref),
            printable(r.sha[:7]),
            state(r),
            format_duration(r.duration),
            printable(tags_cell(r)),
        )
        for r in records
    ]
    return rows


def event_rows(events: Sequence[dict[str, Any]]) -> list[Row]:
    """One delivery a row: when, which forge sent what (its event and delivery id), the
    answer it got and what came of it (its builds, or why none)."""
    rows: list[Row] = [
        (
            "WHEN (UTC)",
            "FORGE",
            "EVENT",
            "DELIVERY",
            "HTTP",
            "OUTCOME",
            "REPOSITORY",
            "REF",
            "BUILDS / WHY",
        )
    ]
    for item in events:
        when = datetime.datetime.fromtimestamp(item["at"], datetime.UTC)
        what = ",".join(item["builds"]) if item["builds"] else (item.get("reason") or "")
        rows.append(
            tuple(
                printable(str(cell))
                for cell in (
                    when.strftime("%Y-%m-%d %H:%M:%S"),
                    item["forge"],
                    item.get("event") or "-",
                    item.get("delivery_id") or "-",
                    item["status"],
                    item["outcome"],
                    item.get("repository") or "-",
                    item.get("ref") or "-",
                    what,
                )
            )
        )
    return rows
