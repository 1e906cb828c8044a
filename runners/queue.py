"""Put builds on the RQ queue fairly, cancel them, and keep their records in step.

Fair share: at most `max_running` builds of one repository are on the RQ queue or running
at once (its "slots"); the rest wait in that repository's own list and are promoted as its
builds finish. One busy repository therefore never starves the others, and RQ stays the
only distribution layer: workers simply take what the queue holds.

A delivery's build records, jobs (or waiting-list entries), dedup entry and delivery-log
line are written by one atomic Lua script (runners/intake.py), its dedup entry last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.callbacks import Callback
from rq.exceptions import NoSuchJobError
from rq.job import Job

from builder.config import Config
from builder.plan import BuildPlan
from runners.deliveries import DELIVERY_TTL_SECONDS, DeliveryLedger
from runners.deliverylog import DeliveryLog, DeliveryRecord
from runners.intake import INTAKE_SCRIPT, BuildSlot, IntakeCall, IntakeReply
from runners.intakebatch import IntakeBatcher
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

# Move the first waiting build into a free slot. KEYS: slots, waiting; ARGV: cap.
_PROMOTE = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('LPOP', KEYS[2])
if not id then return false end
redis.call('SADD', KEYS[1], id)
return id
"""


@dataclass(frozen=True)
class Submitted:
    builds: list[str]
    duplicate: bool  # a redelivery: `builds` are the first delivery's
    # The delivery's line was written with its builds, in their one call; a redelivery's
    # (its outcome known only from the reply) is not.
    logged: bool = False


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
        self._intake = connection.register_script(INTAKE_SCRIPT)
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

    def submit(self, plans: Sequence[BuildPlan]) -> list[str]:
        """Queue every plan (no delivery: a trigger, a rebuild, the CLI)."""
        return self._submit(plans, None, None).builds

    def submit_delivery(
        self, plans: Sequence[BuildPlan], forge: str, delivery_id: str | None, note: DeliveryRecord
    ) -> Submitted:
        """Queue a delivery's plans, once per delivery id, with its line in the delivery log."""
        return self._submit(plans, (forge, delivery_id) if delivery_id else None, note)

    def _submit(
        self,
        plans: Sequence[BuildPlan],
        delivery: tuple[str, str] | None,
        note: DeliveryRecord | None,
    ) -> Submitted:
        packed, records = self.prepare(plans, delivery, note)
        (raw,) = self._intake(args=[packed])
        reply = IntakeReply.parse(raw)
        return self.conclude(records, reply, with_line=note is not None)

    async def submit_delivery_async(
        self,
        intake: IntakeBatcher,
        plans: Sequence[BuildPlan],
        forge: str,
        delivery_id: str | None,
        note: DeliveryRecord,
    ) -> Submitted:
        """`submit_delivery` for an event loop: `intake` runs the intake script on an asyncio
        client (runners/aredis.py), with the deliveries that come at the same time
        (runners/intakebatch.py). A supersede's cancels run in a thread."""
        packed, records = self.prepare(plans, (forge, delivery_id) if delivery_id else None, note)
        reply = IntakeReply.parse(await intake.run(packed))
        if reply.superseded:
            return await asyncio.to_thread(self.conclude, records, reply, with_line=True)
        return self.conclude(records, reply, with_line=True)

    def prepare(
        self,
        plans: Sequence[BuildPlan],
        delivery: tuple[str, str] | None,
        note: DeliveryRecord | None,
    ) -> tuple[bytes, list[BuildRecord]]:
        """The intake script's argument for these plans (runners/intake.py), and the records
        it writes.
        Pure: nothing is sent to Redis here."""
        records = [self._record(plan) for plan in plans]
        ids = [record.id for record in records]
        delivery_key = self.ledger.key(*delivery) if delivery else ""
        call = IntakeCall(delivery_key, DELIVERY_TTL_SECONDS, ids)
        common = self.connection.pipeline(transaction=False)
        for record, plan in zip(records, plans, strict=True):
            self.store.add(record, pipeline=common)
            if_ready = self.connection.pipeline(transaction=False)
            self._enqueue(record.id, plan, if_ready)
            if_waiting = self.connection.pipeline(transaction=False)
            if_waiting.rpush(self._waiting(record.repository), record.id)
            call.slots.append(
                BuildSlot(
                    build_id=record.id,
                    slots_key=self._slots(record.repository),
                    cap=self.max_running,
                    head_key=self._head(plan) if plan.cancel_superseded else "",
                    record_prefix=f"{self.store.prefix}:build:",
                    created_at=record.created_at,
                    burst_seconds=BURST_SECONDS,
                    settle_key=self.settle_key(record.id),
                    settle_seconds=SETTLE_SECONDS,
                    if_ready=if_ready,
                    if_waiting=if_waiting,
                )
            )
        if note is not None:
            # The line as it reads should the call succeed; the caller's record is left
            # as it is, since the call may yet fail and need a line of its own.
            outcome = "built" if ids else "skipped"
            line = replace(note, builds=ids, outcome=outcome, status=202 if ids else 200)
            self.deliveries.add(line, pipeline=common)
        return call.pack(common), records

    def conclude(
        self, records: list[BuildRecord], reply: IntakeReply, *, with_line: bool
    ) -> Submitted:
        """After the script: cancel what the new builds superseded; say what happened."""
        if reply.duplicate_of is not None:
            return Submitted(reply.duplicate_of, duplicate=True)
        for record, ready in zip(records, reply.ready, strict=True):
            # A delivery's own line names its builds; this one is for the other ways in.
            (log.debug if with_line else log.info)(
                "build queued",
                build_id=record.id,
                repository=record.repository,
                ref=record.ref,
                sha=record.sha,
                image=record.image,
                waiting=not ready,
            )
        for older, newer in reply.superseded:
            self.cancel(older, f"superseded by {newer}")
        return Submitted([record.id for record in records], duplicate=False, logged=with_line)

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

    def _enqueue(self, build_id: str, plan: BuildPlan, pipeline: Pipeline | None = None) -> None:
        self.queue.enqueue_call(
            "runners.worker.job.execute_build",
            # The plan is in the build's record already; the job names the build only.
            args=(build_id,),
            job_id=build_id,
            timeout=plan.timeout + TIMEOUT_MARGIN_SECONDS,
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=RESULT_TTL_SECONDS,
            # The build id leads, so RQ's own log lines about the job name it (servicelog).
            description=f"build {build_id} of {plan.repository} {plan.ref} {plan.sha[:7]}",
            on_failure=Callback("runners.worker.job.on_job_failure"),
            pipeline=pipeline,
        )

    def settle_key(self, build_id: str) -> str:
        return f"{self.store.prefix}:build:{build_id}:settle"

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
