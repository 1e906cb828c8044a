"""Run RQ workers for hookbuild's queue, each with its worker context installed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, Worker
from rq.job import Job

from builder.config import Config
from runners.children import die_with_parent
from runners.context import WorkerContext, install
from runners.queue import QUEUE_NAME
from runners.reaper import Reaper
from runners.records import BuildStatus, BuildStore


def default_worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


def _announce(connection: Redis, build_id: str, worker: str) -> None:
    """The build's first log line, written the moment a worker takes it: before the work
    horse is forked and the job prepared, which take a good part of 100 ms here, the user
    following the log already sees who has the build (bench/first_log.py)."""
    store = BuildStore(connection)
    with contextlib.suppress(RedisError):
        if store.status(build_id) is BuildStatus.QUEUED:
            store.append_log(build_id, [f"==> taken by worker {worker}"])


class BuildWorker(Worker):
    """RQ's forking worker, whose work horse dies with it: a worker killed with SIGKILL
    takes its build with it, and the engine then cancels the build and removes its
    container, instead of a build running on unwatched."""

    def execute_job(self, job: Job, queue: Queue) -> Any:
        _announce(self.connection, job.id, self.name)
        return super().execute_job(job, queue)

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(signal.SIGKILL)
        super().main_work_horse(*args, **kwargs)


class InProcessBuildWorker(SimpleWorker):
    """Jobs run in this process (tests, `in_process=True`); the same first line."""

    def execute_job(self, job: Job, queue: Queue) -> Any:
        _announce(self.connection, job.id, self.name)
        return super().execute_job(job, queue)


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
    # Import the build pipeline once here, not in every forked work horse.
    import runners.jobs  # noqa: F401

    name = name or default_worker_name()
    install(WorkerContext(config=config, environ=dict(environ), name=name, in_process=in_process))
    worker_class = InProcessBuildWorker if in_process else BuildWorker
    worker = worker_class(
        [Queue(QUEUE_NAME, connection=connection)], connection=connection, name=name
    )
    reaper = Reaper(connection, config)
    reaper.start()
    try:
        return bool(worker.work(burst=burst, logging_level="INFO"))
    finally:
        reaper.stop()
