"""Build records and their logs, in Redis.

A record is a hash (`hookbuild:build:{id}`), its log a list (`...:log`) that grows line by
line while the build runs, so another process can tail it. Listing uses sorted-set indexes
by creation time, one per query the API and dashboard make (all builds; by repository; by
status; by ref; and status or ref within a repository), never a scan. Transitions that
touch several keys go through one pipeline, as RQ does for its registries.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, cast

import orjson
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from builder.plan import short_ref
from runners import stats
from runners.keys import PREFIX
from runners.stats import observe

# A running build's job refreshes its `alive` key every few seconds; a build whose key has
# expired lost its worker (killed, crashed, machine gone) and is reaped.
ALIVE_TTL_SECONDS = 15


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # path filters: the push changed nothing this image is built from

    @property
    def finished(self) -> bool:
        return self not in (BuildStatus.QUEUED, BuildStatus.RUNNING)


def text(value: bytes | str) -> str:
    """redis-py returns bytes (we never set decode_responses); its types allow str too."""
    return value.decode() if isinstance(value, bytes) else value


def _loads(raw: bytes | str | None, default: Any) -> Any:
    """A field's value, or `default` when it is missing or damaged (not JSON)."""
    try:
        return json.loads(raw) if raw is not None else default
    except ValueError:
        return default


def new_build_id() -> str:
    """Time-ordered and short: 10 hex digits of milliseconds, 6 random."""
    return f"{int(time.time() * 1000):010x}{secrets.token_hex(3)}"


@dataclass(frozen=True)
class BuildRecord:
    id: str
    forge: str
    repository: str
    ref: str
    sha: str
    image: str
    tags: tuple[str, ...]
    status: BuildStatus = BuildStatus.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    digest: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    delivery_id: str | None = None
    message: str | None = None
    pusher: str | None = None
    worker: str | None = None
    plan: Mapping[str, Any] | None = None  # what to run: kept for promotion, retries, rebuilds
    attempt: int = 1
    log_cut: bool = False  # the log reached logs.max_bytes: its end was not kept

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return round(end - self.started_at, 3)

    def _fields(self) -> dict[str, Any]:
        # Shallow, unlike `asdict` (a deep copy of the plan for every record written).
        return {name: getattr(self, name) for name in _RECORD_FIELDS}

    def to_json(self) -> dict[str, Any]:
        data = self._fields()
        data["status"] = self.status.value
        data["tags"] = list(self.tags)
        data["digests"] = dict(self.digests)
        data["short_sha"] = self.sha[:7]
        data["duration"] = self.duration
        data.pop("plan", None)
        return data

    def _to_hash(self) -> dict[str, bytes]:
        # orjson: every delivery writes a record, and this was a visible share of it.
        data = self._fields()
        data["status"] = self.status.value
        data["digests"] = dict(self.digests)
        return {key: orjson.dumps(value) for key, value in data.items()}

    @classmethod
    def _from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> BuildRecord:
        data = {text(key): json.loads(value) for key, value in raw.items()}
        data["status"] = BuildStatus(data["status"])
        data["tags"] = tuple(data.get("tags") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


_RECORD_FIELDS = tuple(f.name for f in fields(BuildRecord))
DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600
# A status filter on top of a ref filter reads the ref's index this far at most: a ref's
# builds are few, and a page that comes up short says so rather than scanning on.
MAX_FILTER_SCAN = 2000
# Log lines read at once: at most ~32 MB with lines at logs.max_line_bytes' default, a few
# hundred KB with common ones.
LOG_PAGE = 500


@dataclass(frozen=True)
class BuildQuery:
    """Which builds a listing wants; every field optional, all of them combined."""

    repository: str | None = None
    status: BuildStatus | None = None
    ref: str | None = None  # full (`refs/heads/main`) or short (`main`)


class BuildStore:
    def __init__(
        self,
        connection: Redis,
        prefix: str = PREFIX,
        retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self.connection = connection
        self.prefix = prefix
        self.retention_seconds = retention_seconds

    def _key(self, build_id: str) -> str:
        return f"{self.prefix}:build:{build_id}"

    def _log_key(self, build_id: str) -> str:
        return f"{self.prefix}:build:{build_id}:log"

    def _index(
        self, repository: str | None = None, status: str | None = None, ref: str | None = None
    ) -> str:
        key = f"{self.prefix}:builds"
        if repository:
            key += f":repo:{repository}"
        if status:
            key += f":status:{status}"
        if ref:
            key += f":ref:{short_ref(ref)}"
        return key

    def _indexes(self, record: BuildRecord, status: BuildStatus) -> list[str]:
        """Every index a record with this status belongs in."""
        return [
            self._index(),
            self._index(record.repository),
            self._index(status=status.value),
            self._index(record.repository, status=status.value),
            self._index(ref=record.ref),
            self._index(record.repository, ref=record.ref),
        ]

    def add(self, record: BuildRecord, pipeline: Pipeline | None = None) -> None:
        pipe = pipeline if pipeline is not None else self.connection.pipeline()
        # Index entries older than the retention point at expired records: drop them here,
        # a bounded amount of work per new build, so listing never meets them.
        oldest = record.created_at - self.retention_seconds
        pipe.hset(self._key(record.id), mapping=cast(Any, record._to_hash()))
        for index in self._indexes(record, record.status):
            pipe.zremrangebyscore(index, "-inf", oldest)
            pipe.zadd(index, {record.id: record.created_at})
        if pipeline is None:
            pipe.execute()

    def get(self, build_id: str) -> BuildRecord | None:
        raw = self.connection.hgetall(self._key(build_id))
        return BuildRecord._from_hash(raw) if raw else None

    def field(self, build_id: str, name: str) -> Any:
        """One field of a record, or None when it is missing or unreadable: for the code
        that must end a build whose record is damaged (a worker survives any one bad job)."""
        return _loads(self.connection.hget(self._key(build_id), name), None)

    def fields(self, build_id: str, *names: str) -> list[Any]:
        """Several fields at once, as `field` reads one."""
        return [_loads(raw, None) for raw in self.connection.hmget(self._key(build_id), names)]

    def get_many(self, build_ids: Sequence[str]) -> list[BuildRecord]:
        pipe = self.connection.pipeline(transaction=False)
        for build_id in build_ids:
            pipe.hgetall(self._key(build_id))
        return [BuildRecord._from_hash(raw) for raw in pipe.execute() if raw]

    def recent(
        self, limit: int = 50, offset: int = 0, repository: str | None = None
    ) -> list[BuildRecord]:
        """Newest first, from the creation-time index (all builds, or one repository's)."""
        return self.find(BuildQuery(repository=repository), limit, offset)

    def find(self, query: BuildQuery, limit: int = 50, offset: int = 0) -> list[BuildRecord]:
        """Newest first: one index read for any single filter, or repository plus one."""
        status = query.status.value if query.status else None
        if not (status and query.ref):
            index = self._index(query.repository, status, query.ref)
            ids = self.connection.zrevrange(index, offset, offset + limit - 1)
            return self.get_many([text(cast(bytes, i)) for i in ids])
        # Status and ref together: read the ref's index (small) and keep the status's.
        index = self._index(query.repository, ref=query.ref)
        ids = self.connection.zrevrange(index, 0, MAX_FILTER_SCAN - 1)
        records = self.get_many([text(cast(bytes, i)) for i in ids])
        return [r for r in records if r.status is query.status][offset : offset + limit]

    def update(self, build_id: str, pipeline: Pipeline | None = None, **changes: Any) -> None:
        if "status" in changes:
            changes["status"] = BuildStatus(changes["status"]).value
        mapping = {key: json.dumps(value) for key, value in changes.items()}
        target = pipeline if pipeline is not None else self.connection
        target.hset(self._key(build_id), mapping=cast(Any, mapping))

    def running_key(self) -> str:
        return f"{self.prefix}:running"

    def alive_key(self, build_id: str) -> str:
        return f"{self.prefix}:build:{build_id}:alive"

    def transition(
        self,
        build_id: str,
        allowed_from: Collection[BuildStatus],
        status: BuildStatus,
        **changes: Any,
    ) -> bool:
        """Move a build to `status` only from one of `allowed_from`, atomically: a build that
        was cancelled meanwhile is never marked succeeded, nor a finished one started again."""
        key = self._key(build_id)
        allowed = {json.dumps(s.value) for s in allowed_from}
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current, repository, created_at = pipe.hmget(
                        key, ["status", "repository", "created_at"]
                    )
                    if current is None or text(current) not in allowed:
                        pipe.reset()
                        return False
                    pipe.multi()
                    self._move_status_index(
                        pipe,
                        build_id,
                        _loads(repository, ""),
                        json.loads(current),
                        status.value,
                        _loads(created_at, 0.0),
                    )
                    self.update(build_id, pipeline=pipe, status=status, **changes)
                    if status is BuildStatus.RUNNING:
                        pipe.sadd(self.running_key(), build_id)
                    elif status.finished:
                        pipe.srem(self.running_key(), build_id)
                        pipe.delete(self.alive_key(build_id))
                    pipe.execute()
                    return True
                except WatchError:
                    continue

    def _move_status_index(
        self,
        pipe: Pipeline,
        build_id: str,
        repository: str,
        old: str,
        new: str,
        created_at: float,
    ) -> None:
        expired = time.time() - self.retention_seconds
        for scope in (None, repository):
            pipe.zrem(self._index(scope, old), build_id)
            pipe.zadd(self._index(scope, new), {build_id: created_at})
            # Finished records expire after the retention; their index entries go here.
            pipe.zremrangebyscore(self._index(scope, new), "-inf", expired)

    def start(self, build_id: str, worker: str) -> BuildRecord | None:
        """queued -> running; None when the build is gone or already finished (cancelled)."""
        now = time.time()
        self.heartbeat(build_id, worker)
        if not self.transition(
            build_id, {BuildStatus.QUEUED}, BuildStatus.RUNNING, started_at=now, worker=worker
        ):
            return None
        created_at = self.field(build_id, "created_at")
        if isinstance(created_at, int | float):
            with self.connection.pipeline(transaction=False) as pipe:
                observe(pipe, stats.WAIT, stats.WAIT_BUCKETS, now - created_at)
                pipe.execute()
        return self.get(build_id)

    def finish(self, build_id: str, status: BuildStatus, **changes: Any) -> bool:
        """running (or queued) -> a finished state; False if it had finished already.
        A finished build's record and log expire after the store's retention."""
        unfinished = {BuildStatus.QUEUED, BuildStatus.RUNNING}
        finished_at = time.time()
        if not self.transition(build_id, unfinished, status, finished_at=finished_at, **changes):
            return False
        # Field by field, not `get`: a build whose record is damaged still ends.
        repository = self.field(build_id, "repository")
        started_at = self.field(build_id, "started_at")
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.expire(self._key(build_id), self.retention_seconds)
            pipe.expire(self._log_key(build_id), self.retention_seconds)
            if isinstance(repository, str):
                pipe.hincrby(stats.BUILDS, f"{status.value}|{repository}", 1)
            if isinstance(started_at, int | float):
                observe(pipe, stats.DURATION, stats.DURATION_BUCKETS, finished_at - started_at)
            pipe.execute()
        return True

    def heartbeat(self, build_id: str, worker: str) -> None:
        self.connection.set(self.alive_key(build_id), worker, ex=ALIVE_TTL_SECONDS)

    def is_alive(self, build_id: str) -> bool:
        return bool(self.connection.exists(self.alive_key(build_id)))

    def running(self) -> list[str]:
        return sorted(text(cast(bytes, i)) for i in self.connection.smembers(self.running_key()))

    def append_log(self, build_id: str, lines: Iterable[str]) -> None:
        batch = list(lines)
        if batch:
            self.connection.rpush(self._log_key(build_id), *batch)

    def log_lines(self, build_id: str, start: int = 0, stop: int = -1) -> list[str]:
        """Lines `start` to `stop` (inclusive; negative from the end, as LRANGE counts).
        A reader of a log that may be big reads it a page (LOG_PAGE) at a time."""
        key = self._log_key(build_id)
        return [text(line) for line in self.connection.lrange(key, start, stop)]

    def log_length(self, build_id: str) -> int:
        return int(self.connection.llen(self._log_key(build_id)))
