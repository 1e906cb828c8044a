"""The RQ job functions: run one build and keep its record and log up to date."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from redis import Redis
from rq import get_current_job
from rq.job import Job

from builder.engine import DockerEngine
from builder.errors import BuildFailed, HookbuildError
from builder.pipeline import Pipeline
from builder.plan import BuildPlan
from builder.source import MirrorCache
from runners.context import current
from runners.records import BuildStatus, BuildStore
from runners.tagledger import RedisTagLedger


class _LogWriter:
    """Appends log lines to Redis as they come, batching only what arrives in one instant."""

    def __init__(self, store: BuildStore, build_id: str) -> None:
        self.store = store
        self.build_id = build_id

    def __call__(self, line: str) -> None:
        self.store.append_log(self.build_id, [line])


def execute_build(build_id: str, plan_data: dict[str, Any]) -> dict[str, Any]:
    job = get_current_job()
    if job is None:
        raise HookbuildError("execute_build runs inside an RQ job")
    connection: Redis = job.connection
    context = current()
    store = BuildStore(connection)
    plan = BuildPlan.from_dict(plan_data)
    record = store.start(build_id, context.name)
    if record is None:
        return {"status": "skipped", "reason": "the build was cancelled or is gone"}

    log = _LogWriter(store, build_id)
    log(f"==> build {build_id} of {plan.repository} {plan.ref} at {plan.sha} on {context.name}")
    started = time.monotonic()
    try:
        engine = DockerEngine.from_environment(context.environ)
        pipeline = Pipeline(
            context.config,
            engine,
            MirrorCache(context.state_dir / "mirrors"),
            context.state_dir / "work",
            ledger=RedisTagLedger(connection),
            build_id=build_id,
        )
        result = pipeline.run(plan, log)
    except BuildFailed as exc:
        log(f"==> FAILED: {exc.reason}")
        store.finish(build_id, BuildStatus.FAILED, error=f"build failed: {exc.reason}")
        return {"status": "failed", "error": exc.reason}
    except HookbuildError as exc:
        log(f"==> FAILED: {exc}")
        store.finish(build_id, BuildStatus.FAILED, error=str(exc))
        return {"status": "failed", "error": str(exc)}
    except Exception as exc:
        log(f"==> FAILED: internal error: {type(exc).__name__}: {exc}")
        store.finish(
            build_id, BuildStatus.FAILED, error=f"internal error: {type(exc).__name__}: {exc}"
        )
        raise
    if result.skipped:
        store.finish(build_id, BuildStatus.SKIPPED, tags=result.tags, error=result.skipped)
        return {"status": "skipped", "reason": result.skipped}
    pushed = ", ".join(result.digests) or "no tag (every tag points at a newer commit)"
    log(f"==> succeeded in {time.monotonic() - started:.1f}s: {pushed}")
    store.finish(
        build_id,
        BuildStatus.SUCCEEDED,
        tags=result.tags,
        digest=result.digest,
        digests=result.digests,
    )
    return {"status": "succeeded", "digest": result.digest}


def on_job_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ calls this when a job dies outside our own handling: a timeout, a killed work horse."""
    store = BuildStore(connection)
    record = store.get(job.id)
    if record is None or record.status.finished:
        return
    reason = f"{exc_type.__name__}: {exc_value}" if exc_type else "the worker died"
    if exc_type is not None and "Timeout" in exc_type.__name__:
        reason = f"timed out after {job.timeout} seconds"
    store.append_log(job.id, [f"==> FAILED: {reason}"])
    store.finish(job.id, BuildStatus.FAILED, error=reason)
