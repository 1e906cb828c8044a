"""Put build plans on the RQ queue, each with its build record, atomically.

The record, the RQ job and the delivery's dedup entry are written in one Redis transaction:
either the forge's delivery is fully accepted or nothing of it is, and the receiver answers
5xx so the forge (or a person) can redeliver.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue
from rq.callbacks import Callback

from builder.plan import BuildPlan
from runners.deliveries import DeliveryLedger
from runners.records import BuildRecord, BuildStore, new_build_id

QUEUE_NAME = "hookbuild"
RESULT_TTL_SECONDS = 7 * 24 * 3600
# RQ's own timeout is the last line of defence; the worker stops the build itself first.
TIMEOUT_MARGIN_SECONDS = 120


class BuildQueue:
    def __init__(self, connection: Redis, name: str = QUEUE_NAME) -> None:
        self.connection = connection
        self.queue = Queue(name, connection=connection)
        self.store = BuildStore(connection)
        self.ledger = DeliveryLedger(connection)

    def submit(
        self, plans: Sequence[BuildPlan], delivery: tuple[str, str] | None = None
    ) -> list[str]:
        """Queue every plan; record the delivery `(forge, id)` as done in the same transaction."""
        records = [
            BuildRecord(
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
            )
            for plan in plans
        ]
        with self.connection.pipeline() as pipe:
            # Explicit MULTI first: RQ's enqueue calls multi() itself on a pipeline that is
            # not yet in one, which fails once our own commands are buffered.
            pipe.multi()
            for record, plan in zip(records, plans, strict=True):
                self.store.add(record, pipeline=pipe)
                self.queue.enqueue_call(
                    "runners.jobs.execute_build",
                    args=(record.id, plan.to_dict()),
                    job_id=record.id,
                    timeout=plan.timeout + TIMEOUT_MARGIN_SECONDS,
                    result_ttl=RESULT_TTL_SECONDS,
                    failure_ttl=RESULT_TTL_SECONDS,
                    description=f"build {plan.repository} {plan.ref} {plan.sha[:7]}",
                    on_failure=Callback("runners.jobs.on_job_failure"),
                    pipeline=pipe,
                )
            ids = [record.id for record in records]
            if delivery is not None:
                self.ledger.record(delivery[0], delivery[1], ids, pipe)
            pipe.execute()
        return ids
