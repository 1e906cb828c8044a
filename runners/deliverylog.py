"""Every webhook delivery and what came of it: built (which builds), skipped or ignored
(and why), a duplicate, or rejected. A capped Redis stream, newest first when read."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline

from runners import stats
from runners.keys import PREFIX
from runners.records import BuildStatus, BuildStore, text

MAX_DELIVERIES = 10_000
# Each text field's bound, in characters, far above what an honest forge sends: a delivery's
# line costs about 2 KB at most whatever an anonymous request sent (10,000 lines: ~20 MB),
# and `/api/events?limit=200` stays well under a megabyte. The receiver bounds the same
# fields before it logs or answers (webhooks/bounds.py); this is the store's own floor.
FIELD_CHARS = {
    "forge": 32,
    "reason": 1024,  # may quote the fields below
    "event": 64,
    "delivery_id": 128,  # forges send UUIDs or 40-hex digests
    "repository": 256,  # GitLab's nested groups make the longest full names
    "ref": 256,
    "sha": 64,
}


def clip(value: str, limit: int) -> str:
    """`value`, cut to `limit` characters with a marker that says how much was cut."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}…[{len(value) - limit} more characters]"


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    for name, limit in FIELD_CHARS.items():
        value = data.get(name)
        if isinstance(value, str) and len(value) > limit:
            data[name] = clip(value, limit)
    return data


@dataclass
class DeliveryRecord:
    forge: str
    outcome: str = "rejected"  # built | skipped | ignored | duplicate | rejected | error
    status: int = 0  # the HTTP status the forge got
    reason: str | None = None
    event: str | None = None
    delivery_id: str | None = None
    repository: str | None = None
    ref: str | None = None
    sha: str | None = None
    builds: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        # Shallow (`asdict` copies deeply): written for every delivery.
        data = {name: getattr(self, name) for name in _DELIVERY_FIELDS}
        data["builds"] = list(self.builds)
        return _bounded(data)


_DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryRecord))


def with_build_outcomes(events: list[dict[str, Any]], store: BuildStore) -> list[dict[str, Any]]:
    """Join each delivery with its builds' states. A delivery whose every build a worker
    skipped (path filters are checked after fetching) reads as skipped, with the reasons."""
    ids = [build_id for event in events for build_id in event["builds"]]
    records = {record.id: record for record in store.get_many(ids)} if ids else {}
    for event in events:
        found = [records[i] for i in event["builds"] if i in records]
        event["build_statuses"] = {r.id: r.status.value for r in found}
        if (
            event["outcome"] == "built"
            and found
            and all(r.status is BuildStatus.SKIPPED for r in found)
        ):
            event["outcome"] = "skipped"
            event["reason"] = "; ".join(sorted({r.error or "skipped" for r in found}))
    return events


class DeliveryLog:
    def __init__(self, connection: Redis, prefix: str = PREFIX) -> None:
        self.connection = connection
        self.key = f"{prefix}:deliveries"

    def add(self, record: DeliveryRecord, pipeline: Pipeline | None = None) -> None:
        target = pipeline if pipeline is not None else self.connection
        target.hincrby(stats.DELIVERIES, f"{record.forge}|{record.outcome}", 1)
        target.xadd(
            self.key,
            {"record": json.dumps(record.to_json())},
            maxlen=MAX_DELIVERIES,
            approximate=True,
        )

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self.connection.xrevrange(self.key, count=limit)
        )
        records = []
        for entry_id, entry in entries:
            # Bounded again on the way out: lines written before the bounds existed.
            data = _bounded(json.loads(text(entry[b"record"])))
            data["id"] = text(entry_id)
            records.append(data)
        return records
