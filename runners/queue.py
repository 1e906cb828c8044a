"""Put builds on the RQ queue fairly, cancel them, and keep their records in step.

Fair share: at most `max_running` builds of one repository are on the RQ queue or running
at once (its "slots"); the rest wait in that repository's own list and are promoted as its
builds finish. One busy repository therefore never starves the others, and RQ stays the
only distribution layer: workers simply take what the queue holds.

A delivery's build records, jobs (or waiting-list entries) and dedup entry are written in
one Redis transaction: accepted whole or not at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from redis import Redis
from rq import Queue
from rq.callbacks import Callback
from rq.exceptions import NoSuchJobError
from rq.job import Job

from builder.config import Config
from builder.plan import BuildPlan
from runners.deliveries import DeliveryLedger
from runners.deliverylog import DeliveryLog, DeliveryRecord
from runners.records import (
    DEFAULT_RETENTION_SECONDS,
    BuildRecord,
    BuildStatus,
    BuildStore,
    new_build_id,
    text,
)
from runners.servicelog import get_logger

log = get_logger(__name__)
QUEUE_NAME = "hookbuild"
RESULT_TTL_SECONDS = 7 * 24 * 3600
# RQ's own timeout is the last line of defence: the job stops its build at the plan's
# timeout, and RQ kills the work horse only if that did not work.
TIMEOUT_MARGIN_SECONDS = 60
DEFAULT_MAX_RUNNING = 2
# A push that supersedes a build of the same branch that is still queued or running, and was
# queued in the last BURST_SECONDS, is part of a burst: it waits SETTLE_SECONDS before
# starting, so that the pushes still coming cancel it while it is queued rather than after
# it started. A lone push, or one after the previous build finished, starts at once.
BURST_SECONDS = 10.0
SETTLE_SECONDS = 1.0

# Take a slot for a build if the repository has one free. KEYS: slots; ARGV: id, cap.
_RESERVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1]); return 1
end
return 0
"""
# Move the first waiting build into a free slot. KEYS: slots, waiting; ARGV: cap.
_PROMOTE = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('LPOP', KEYS[2])
if not id then return false end
redis.call('SADD', KEYS[1], id)
return id
"""


class BuildQueue:
    def __init__(
        self,
        connection: Redis,
        name: str = QUEUE_NAME,
        max_running: int = DEFAULT_MAX_RUNNING,
        retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self.connection = connection
        self.queue = Queue(name, connection=connection)
        self.store = BuildStore(connection, retention_seconds=retention_seconds)
        self.ledger = DeliveryLedger(connection)
        self.deliveries = DeliveryLog(connection)
        self.max_running = max_running
        self._reserve = connection.register_script(_RESERVE)
        self._promote = connection.register_script(_PROMOTE)

    @classmethod
    def for_config(cls, connection: Redis, config: Config) -> BuildQueue:
        return cls(
            connection,
            max_running=config.max_running_per_repository,
            retention_seconds=int(config.retention_days * 24 * 3600),
        )

    def _slots(self, repository: str) -> str:
        return f"{self.store.prefix}:slots:{repository}"

    def _waiting(self, repository: str) -> str:
        return f"{self.store.prefix}:waiting:{repository}"

    def _head(self, plan: BuildPlan) -> str:
        return f"{self.store.prefix}:head:{plan.repository}:{plan.image}:{plan.ref}"

    def submit(
        self,
        plans: Sequence[BuildPlan],
        delivery: tuple[str, str] | None = None,
        note: DeliveryRecord | None = None,
    ) -> list[str]:
        """Queue every plan; record the delivery `(forge, id)` as done, and its `note` in
        the delivery log, in the same transaction. A newer push supersedes the older builds
        of the same image and branch."""
        records = [self._record(plan) for plan in plans]
        bursting = {r.id for r, p in zip(records, plans, strict=True) if self._in_burst(p, r)}
        ready = {
            r.id: bool(self._reserve([self._slots(r.repository)], [r.id, self.max_running]))
            for r in records
        }
        try:
            with self.connection.pipeline() as pipe:
                # Explicit MULTI first: RQ's enqueue calls multi() itself on a pipeline
                # that is not yet in one, which fails once our own commands are buffered.
                pipe.multi()
                for record, plan in zip(records, plans, strict=True):
                    self.store.add(record, pipeline=pipe)
                    if record.id in bursting:
                        pipe.set(self.settle_key(record.id), SETTLE_SECONDS, ex=3600)
                    if ready[record.id]:
                        self._enqueue(record.id, plan, pipe)
                    else:
                        pipe.rpush(self._waiting(record.repository), record.id)
                ids = [record.id for record in records]
                if delivery is not None:
                    self.ledger.record(delivery[0], delivery[1], ids, pipe)
                if note is not None:
                    note.builds, note.outcome, note.status = ids, "built", 202
                    self.deliveries.add(note, pipeline=pipe)
                pipe.execute()
        except Exception:
            for record in records:
                self.connection.srem(self._slots(record.repository), record.id)
            raise
        for record in records:
            log.info(
                "build queued",
                build_id=record.id,
                repository=record.repository,
                ref=record.ref,
                sha=record.sha,
                image=record.image,
                waiting=not ready[record.id],
            )
        self._supersede(records, plans)
        return ids

    @staticmethod
    def _record(plan: BuildPlan) -> BuildRecord:
        return BuildRecord(
            id=new_build_id(),
            forge=plan.forge,
            repository=plan.repository,
            ref=plan.ref,
            sha=plan.sha,
            image=plan.image,
            tags=plan.tags,
            delivery_id=plan.delivery_id,
            message=plan.message,
            pusher=plan.pusher,
            plan=plan.to_dict(),
        )

    def _enqueue(self, build_id: str, plan: BuildPlan, pipeline: object | None = None) -> None:
        self.queue.enqueue_call(
            "runners.jobs.execute_build",
            args=(build_id, plan.to_dict()),
            job_id=build_id,
            timeout=plan.timeout + TIMEOUT_MARGIN_SECONDS,
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=RESULT_TTL_SECONDS,
            # The build id leads, so RQ's own log lines about the job name it (servicelog).
            description=f"build {build_id} of {plan.repository} {plan.ref} {plan.sha[:7]}",
            on_failure=Callback("runners.jobs.on_job_failure"),
            pipeline=pipeline,  # type: ignore[arg-type]
        )

    def settle_key(self, build_id: str) -> str:
        return f"{self.store.prefix}:build:{build_id}:settle"

    def _in_burst(self, plan: BuildPlan, record: BuildRecord) -> bool:
        if not plan.cancel_superseded:
            return False
        previous = self.connection.get(self._head(plan))
        if previous is None:
            return False
        earlier = self.store.get(text(previous))
        if earlier is None or earlier.status.finished:
            return False
        return record.created_at - earlier.created_at < BURST_SECONDS

    def _supersede(self, records: Sequence[BuildRecord], plans: Sequence[BuildPlan]) -> None:
        for record, plan in zip(records, plans, strict=True):
            if not plan.cancel_superseded:
                continue
            previous = self.connection.getset(self._head(plan), record.id)
            if previous is not None and text(previous) != record.id:
                self.cancel(text(previous), f"superseded by {record.id}")

    def release(self, build_id: str, repository: str) -> None:
        """A build left its slot (finished, cancelled, lost): start the next one waiting."""
        self.connection.srem(self._slots(repository), build_id)
        self.promote(repository)

    def promote(self, repository: str) -> list[str]:
        started: list[str] = []
        while True:
            raw = self._promote(
                [self._slots(repository), self._waiting(repository)], [self.max_running]
            )
            if raw is None:
                return started
            build_id = text(raw)
            record = self.store.get(build_id)
            if record is None or record.status.finished or record.plan is None:
                self.connection.srem(self._slots(repository), build_id)
                continue
            self._enqueue(build_id, BuildPlan.from_dict(record.plan))
            started.append(build_id)

    def requeue(self, record: BuildRecord) -> None:
        """Run a build again (its worker was lost): a fresh job under the same id."""
        assert record.plan is not None
        with contextlib.suppress(NoSuchJobError):
            Job.fetch(record.id, connection=self.connection).delete()
        self.connection.sadd(self._slots(record.repository), record.id)
        self._enqueue(record.id, BuildPlan.from_dict(record.plan))

    def cancel(self, build_id: str, reason: str) -> BuildRecord | None:
        """Cancel a build wherever it is: waiting, queued, or running (its job sees the
        cancel flag and stops the build on the engine)."""
        record = self.store.get(build_id)
        if record is None or record.status.finished:
            return record
        if self.store.finish(build_id, BuildStatus.CANCELLED, error=reason):
            self.store.append_log(build_id, [f"==> cancelled: {reason}"])
            log.info("build cancelled", build_id=build_id, reason=reason)
            self.connection.set(self.cancel_key(build_id), reason, ex=24 * 3600)
            self.connection.lrem(self._waiting(record.repository), 0, build_id)
            if record.status is BuildStatus.QUEUED:
                with contextlib.suppress(NoSuchJobError):
                    Job.fetch(build_id, connection=self.connection).cancel()
            self.release(build_id, record.repository)
        return self.store.get(build_id)

    def cancel_key(self, build_id: str) -> str:
        return f"{self.store.prefix}:build:{build_id}:cancel"

    def describe(self, record: BuildRecord) -> dict[str, Any]:
        """A build as the API and the dashboard show it: its record and its place in line."""
        data = record.to_json()
        data["queue_position"] = self.position(record)
        return data

    def position(self, record: BuildRecord) -> int | None:
        """1 for the next build to start; None unless queued."""
        if record.status is not BuildStatus.QUEUED:
            return None
        index = self.queue.get_job_position(record.id)
        if index is not None:
            return int(index) + 1
        waiting = self.connection.lpos(self._waiting(record.repository), record.id)
        if not isinstance(waiting, int):
            return None
        return len(self.queue) + waiting + 1
