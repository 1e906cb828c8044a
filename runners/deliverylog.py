"""Every webhook delivery and what came of it: built (which builds), skipped or ignored
(and why), a duplicate, or rejected. A capped Redis stream, newest first when read."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from redis import Redis

from runners.records import PREFIX, text

MAX_DELIVERIES = 10_000


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
        return asdict(self)


class DeliveryLog:
    def __init__(self, connection: Redis, prefix: str = PREFIX) -> None:
        self.connection = connection
        self.key = f"{prefix}:deliveries"

    def add(self, record: DeliveryRecord) -> None:
        self.connection.xadd(
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
        for entry_id, fields in entries:
            data = json.loads(text(fields[b"record"]))
            data["id"] = text(entry_id)
            records.append(data)
        return records
