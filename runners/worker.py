"""Run RQ workers for hookbuild's queue, each with its worker context installed."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from redis import Redis
from rq import Queue, SimpleWorker, Worker

from builder.config import Config
from runners.context import WorkerContext, install
from runners.queue import QUEUE_NAME


def default_worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


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
    name = name or default_worker_name()
    install(WorkerContext(config=config, environ=dict(environ), name=name))
    worker_class = SimpleWorker if in_process else Worker
    worker = worker_class(
        [Queue(QUEUE_NAME, connection=connection)], connection=connection, name=name
    )
    return bool(worker.work(burst=burst, logging_level="INFO"))
