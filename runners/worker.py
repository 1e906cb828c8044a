"""Run RQ workers for hookbuild's queue, each with its worker context installed."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Mapping
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker

from builder.config import Config
from runners.children import die_with_parent
from runners.context import WorkerContext, install
from runners.queue import QUEUE_NAME
from runners.reaper import Reaper


def default_worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


class BuildWorker(Worker):
    """RQ's forking worker, whose work horse dies with it: a worker killed with SIGKILL
    takes its build with it, and the engine then cancels the build and removes its
    container, instead of a build running on unwatched."""

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(signal.SIGKILL)
        super().main_work_horse(*args, **kwargs)


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
    worker_class = SimpleWorker if in_process else BuildWorker
    worker = worker_class(
        [Queue(QUEUE_NAME, connection=connection)], connection=connection, name=name
    )
    reaper = Reaper(connection, config)
    reaper.start()
    try:
        return bool(worker.work(burst=burst, logging_level="INFO"))
    finally:
        reaper.stop()
