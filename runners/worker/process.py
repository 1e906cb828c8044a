"""Run RQ workers for hookbuild's queue, each with its worker context installed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.worker.base import BaseWorker

from builder.config import Config
from runners.children import die_with_parent
from runners.queue import QUEUE_NAME, BuildQueue
from runners.records import BuildStatus, BuildStore
from runners.servicelog import get_logger
from runners.worker import prefetch, workspace
from runners.worker.context import WorkerContext, current, has_context, install
from runners.worker.reaper import Reaper
from runners.worker.watch import HorseWatch

log = get_logger(__name__)

# How long a stopping worker waits for its pubsub thread (RQ's own bound).
PUBSUB_STOP_SECONDS = 1.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


def _take(connection: Redis, build_id: str, worker: str) -> subprocess.Popen[bytes] | None:
    """What a worker does the moment it takes a build, before the work horse is forked and
    the job prepared (a good part of 100 ms here): the build's first log line, so the user
    following it sees who has it (bench/first_log.py), and the start of the commit's fetch
    (runners/worker/prefetch.py). Returns that fetch's process, for `prefetch.finish`."""
    try:
        store = BuildStore(connection)
        record = store.get(build_id)
        if record is not None and record.status is BuildStatus.QUEUED:
            store.append_log(build_id, [f"==> taken by worker {worker}"])
            return prefetch.start(current(), record) if has_context() else None
    except RedisError:
        pass
    except Exception as exc:  # this runs in the worker itself, which must live on
        # A record or plan that cannot be read (a NUL byte in its ref, damaged JSON): the
        # job itself meets the same and fails the build with the reason (runners/worker/job.py).
        # No traceback: its locals would quote the hostile plan at length.
        log.error(
            "cannot take the build as usual; the job will end it",
            build_id=build_id,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
    return None


class _TakesBuilds(BaseWorker):
    """Both worker classes' first steps with a build (`_take`), and the fetch's end."""

    def execute_job(self, job: Job, queue: Queue) -> Any:
        fetch = _take(self.connection, job.id, self.name)
        watch = self._watch(job.id)
        try:
            return super().execute_job(job, queue)
        finally:
            if watch is not None:
                watch.stop()
            prefetch.finish(job.id, fetch)
            # The pipeline removes its directories itself, unless its horse was killed.
            if has_context():
                workspace.remove(current().state_dir, job.id)

    def _watch(self, build_id: str) -> HorseWatch | None:
        """The build's watch from outside its work horse, where there is one."""
        return None

    def unsubscribe(self) -> None:
        """RQ's own, with a bounded wait for its pubsub thread.

        RQ stops the thread and then joins it for at most a second; since redis-py 8,
        `PubSubWorkerThread.stop()` itself joins without a bound. The thread reads with a
        60 s timeout, and when it has already taken UNSUBSCRIBE's reply (or Redis is away
        or paused) nothing wakes it: a worker told to stop, or whose `hookbuild up` was
        killed, lived on for up to a minute. The thread is a daemon; the process's exit
        ends it."""
        if not self.pubsub_thread:
            return
        self.log.info("Worker %s: unsubscribing from %s", self.name, self.pubsub_channel_name)
        with contextlib.suppress(RedisError):  # Redis is gone: nothing to unsubscribe from
            self.pubsub.unsubscribe()
        self.pubsub_thread.stop(timeout=PUBSUB_STOP_SECONDS)
        if not self.pubsub_thread.is_alive():
            self.pubsub.close()  # closing under a reading thread would break its read


class BuildWorker(_TakesBuilds, Worker):
    """RQ's forking worker, whose work horse dies with it: a worker killed with SIGKILL
    takes its build with it, and the engine then cancels the build and removes its
    container, instead of a build running on unwatched."""

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(signal.SIGKILL)
        super().main_work_horse(*args, **kwargs)

    def _watch(self, build_id: str) -> HorseWatch | None:
        config = current().config if has_context() else None
        queue = BuildQueue.for_config(self.connection, config) if config else None
        if queue is None:
            return None
        watch = HorseWatch(queue, build_id, self.name, lambda: self.horse_pid)
        watch.start()
        return watch


class InProcessBuildWorker(_TakesBuilds, SimpleWorker):
    """Jobs run in this process (tests, `in_process=True`)."""


def run_worker(
    config: Config,
    connection: Redis,
    environ: Mapping[str, str],
    *,
    name: str | None = None,
    burst: bool = False,
    in_process: bool = False,
) -> bool:
    """Work the queue; returns whether any job ran. `in_process` runs jobs without forking."""
    # Import the build pipeline once here, not in every forked work horse; so too what the
    # disk budget reads of the config after every build.
    import runners.worker.job  # noqa: F401

    config.unlabelled_images  # noqa: B018 - made here, inherited by every work horse

    name = name or default_worker_name()
    install(WorkerContext(config=config, environ=dict(environ), name=name, in_process=in_process))
    worker_class = InProcessBuildWorker if in_process else BuildWorker
    worker = worker_class(
        [Queue(QUEUE_NAME, connection=connection)], connection=connection, name=name
    )
    workspace.sweep(WorkerContext(config, {}, name).state_dir, BuildStore(connection))
    reaper = Reaper(connection, config)
    reaper.start()
    # RQ installs its SIGINT and SIGTERM handlers (a warm shutdown) and leaves them there;
    # a process that ran a worker in-process (the tests, an embedding program) gets its own
    # back, so that SIGTERM ends it instead of waiting for a worker that is gone.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return bool(worker.work(burst=burst, logging_level="INFO"))
    finally:
        reaper.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
