"""The RQ job functions: run one build and keep its record and log up to date."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from builder.build.backend import connect_engine
from builder.build.engine import BuildEngine
from builder.build.pipeline import IMAGE_LABEL, Pipeline
from builder.build.source import MirrorCache
from builder.errors import BuildFailed, HookbuildError
from builder.plan import BuildPlan
from runners.errors import from_redis_error
from runners.queue import BuildQueue
from runners.records import BuildStatus, BuildStore
from runners.servicelog import about_build, get_logger
from runners.tagledger import RedisTagLedger
from runners.worker import prefetch, workspace
from runners.worker.buildlog import BuildLogWriter
from runners.worker.context import WorkerContext, current, has_context
from runners.worker.watch import BuildWatchdog

service_log = get_logger(__name__)  # the service's own log; a build's is `BuildLogWriter`


def execute_build(build_id: str, plan_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one build. Its plan is read from its record (`plan_data` is for jobs queued by
    an earlier version, which carried the plan in the job too)."""
    with about_build(build_id):
        try:
            return _execute_build(build_id, plan_data)
        except Exception as exc:  # a worker survives any one bad job
            # Whatever raised (a plan or record that cannot be read, a bug), the build ends
            # here with the reason, and its slot goes to the next build of its repository.
            reason = f"internal error: {type(exc).__name__}: {exc}"
            service_log.error("build failed outside the pipeline", reason=reason[:MAX_REASON])
            return give_up(_queue(get_connection()), build_id, reason)


MAX_REASON = 500  # a reason may quote a hostile plan: stored and logged bounded


def give_up(queue: BuildQueue, build_id: str, reason: str) -> dict[str, Any]:
    """End a build that cannot go on, whatever state its record is in: failed with
    `reason` (unless it ended already), its repository's slot released."""
    if len(reason) > MAX_REASON:
        reason = reason[:MAX_REASON] + "..."
    store = queue.store
    if store.finish(build_id, BuildStatus.FAILED, error=reason):
        store.append_log(build_id, [f"==> FAILED: {reason}"])
    repository = store.field(build_id, "repository")
    if isinstance(repository, str):
        queue.release(build_id, repository)
    return {"status": "failed", "error": reason}


def _queue(connection: Redis) -> BuildQueue:
    """The queue as this worker's config sets it up (its slots' cap above all)."""
    if has_context():
        return BuildQueue.for_config(connection, current().config)
    return BuildQueue(connection)


def get_connection() -> Redis:
    job = get_current_job()
    if job is None:
        raise HookbuildError("execute_build runs inside an RQ job")
    return job.connection


def _execute_build(build_id: str, plan_data: dict[str, Any] | None) -> dict[str, Any]:
    connection = get_connection()
    context = current()
    queue = BuildQueue.for_config(connection, context.config)
    store = queue.store
    if plan_data is None:
        record = store.get(build_id)
        if record is None or record.plan is None:
            service_log.info("build not started: its record is gone")
            return {"status": "skipped", "reason": "the build's record is gone"}
        plan_data = dict(record.plan)
    plan = BuildPlan.from_dict(plan_data)
    _settle(queue, build_id)
    if store.start(build_id, context.name) is None:
        queue.release(build_id, plan.repository)
        service_log.info("build not started: cancelled or gone")
        return {"status": "skipped", "reason": "the build was cancelled or is gone"}
    service_log.info(
        "build started",
        repository=plan.repository,
        ref=plan.ref,
        sha=plan.sha,
        worker=context.name,
    )

    limits = context.config.logs
    log = BuildLogWriter(
        store, build_id, max_chars=limits.max_bytes, max_line=limits.max_line_bytes
    )
    watchdog = BuildWatchdog(
        store,
        build_id,
        context.name,
        queue.cancel_key(build_id),
        can_kill=not context.in_process,
        timeout=plan.timeout,
        before_stop=log.flush,
    )
    watchdog.start()
    try:
        return _run(build_id, plan, context, store, connection, log)
    finally:
        log.close()
        watchdog.stop()
        queue.release(build_id, plan.repository)
        _prune(context, store, build_id)


def _prune(context: WorkerContext, store: BuildStore, build_id: str) -> None:
    """Keep this worker's disk within its budget: old images, stopped containers, mirrors."""
    disk = context.config.disk
    try:
        engine = connect_engine(context.environ)
        try:
            images = engine.prune(
                IMAGE_LABEL,
                disk.image_budget_mb * 1024 * 1024,
                disk.min_age_seconds,
                unlabelled=context.config.unlabelled_images,
            )
        finally:
            engine.close()
        mirrors = MirrorCache(context.state_dir / "mirrors").prune(
            disk.mirror_budget_mb * 1024 * 1024
        )
    except (HookbuildError, OSError) as exc:
        store.append_log(build_id, [f"==> note: pruning failed: {exc}"])
        return
    if images or mirrors:
        store.append_log(
            build_id,
            [f"==> pruned {len(images)} old image(s) and {len(mirrors)} mirror(s) over budget"],
        )


def _settle(queue: BuildQueue, build_id: str) -> None:
    """A build in a burst of pushes waits a moment, queued: the next push cancels it here,
    before it ever starts, instead of after."""
    raw = queue.connection.get(queue.settle_key(build_id))
    if raw is None:
        return
    deadline = time.monotonic() + float(raw)
    queue.store.append_log(
        build_id, [f"==> newer pushes are arriving: waiting {float(raw):.1f}s for them"]
    )
    while time.monotonic() < deadline:
        record = queue.store.get(build_id)
        if record is None or record.status.finished:
            return
        time.sleep(0.1)


def _run(
    build_id: str,
    plan: BuildPlan,
    context: WorkerContext,
    store: BuildStore,
    connection: Redis,
    log: BuildLogWriter,
) -> dict[str, Any]:
    log(f"==> build {build_id} of {plan.repository} {plan.ref} at {plan.sha} on {context.name}")
    if prefetch.started(build_id):
        log("==> the worker began fetching this commit as it took the build")
    started = time.monotonic()
    engine: BuildEngine | None = None
    try:
        engine = connect_engine(context.environ, max_line=context.config.logs.max_line_bytes)
        pipeline = Pipeline(
            context.config,
            engine,
            MirrorCache(context.state_dir / "mirrors"),
            workspace.build_dir(context.state_dir, build_id),
            ledger=RedisTagLedger(connection),
            build_id=build_id,
        )
        result = pipeline.run(plan, log)
    except JobTimeoutException:
        # Raised in the middle of the build; the work horse ends right after, which makes
        # the engine cancel the build and remove its container.
        return _fail(store, build_id, log, f"timed out after {plan.timeout}s")
    except BuildFailed as exc:
        return _fail(store, build_id, log, f"build failed: {exc.reason}")
    except HookbuildError as exc:
        return _fail(store, build_id, log, str(exc))
    except RedisError as exc:  # the tag ledger's, reached from inside the pipeline
        return _fail(store, build_id, log, str(from_redis_error(exc, "Redis failed")))
    except Exception as exc:
        _fail(store, build_id, log, f"internal error: {type(exc).__name__}: {exc}"[:MAX_REASON])
        raise
    finally:
        if engine is not None:
            engine.close()
    seconds = round(time.monotonic() - started, 1)
    if result.skipped:
        log.close()  # every line in Redis before the build reads as finished
        store.finish(build_id, BuildStatus.SKIPPED, tags=result.tags, error=result.skipped)
        service_log.info("build skipped", reason=result.skipped, seconds=seconds)
        return {"status": "skipped", "reason": result.skipped}
    pushed = ", ".join(result.digests) or "no tag (every tag points at a newer commit)"
    log.note(f"==> succeeded in {seconds:.1f}s: {pushed}")
    service_log.info(
        "build succeeded", seconds=seconds, digest=result.digest, pushed=list(result.digests)
    )
    log.close()
    store.finish(
        build_id,
        BuildStatus.SUCCEEDED,
        tags=result.tags,
        digest=result.digest,
        digests=result.digests,
    )
    return {"status": "succeeded", "digest": result.digest}


def _fail(store: BuildStore, build_id: str, log: BuildLogWriter, reason: str) -> dict[str, Any]:
    log.note(f"==> FAILED: {reason}")
    service_log.warning("build failed", reason=reason)
    log.close()
    store.finish(build_id, BuildStatus.FAILED, error=reason)
    return {"status": "failed", "error": reason}


def on_job_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ calls this when a job dies outside our own handling: RQ's own timeout killed the
    work horse, or it died. A build already finished (cancelled, failed) stays as it is."""
    queue = _queue(connection)
    status = queue.store.field(job.id, "status")
    if status not in (BuildStatus.QUEUED.value, BuildStatus.RUNNING.value):
        # Ended already (its watchdog stopped it, then its horse): its slot is free too.
        repository = queue.store.field(job.id, "repository")
        if isinstance(repository, str):
            queue.release(job.id, repository)
        return
    reason = f"{exc_type.__name__}: {exc_value}" if exc_type else "the worker died"
    if exc_type is not None and "Timeout" in exc_type.__name__:
        reason = f"timed out after {job.timeout}s"
    service_log.error("build failed outside its job", build_id=job.id, reason=reason[:MAX_REASON])
    give_up(queue, job.id, reason)
