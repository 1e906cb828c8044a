"""A process that ran a worker in-process keeps its own signal handlers afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from redis import Redis
from rq import Queue

from runners.queue import QUEUE_NAME
from runners.worker.process import BuildWorker

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from redis import Redis
    from tests.configs import parse_config
    from runners.worker.process import run_worker

    config = parse_config(f"state_dir: {sys.argv[2]}\\nrepositories: []\\n", {})
    run_worker(config, Redis.from_url(sys.argv[1]), {}, burst=True, in_process=True)
    print("worker done", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(20)
    print("survived SIGTERM", flush=True)
    """
)


def test_sigterm_ends_a_process_after_its_in_process_worker(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """#16.14: RQ's warm-shutdown handler used to stay installed, so pytest (or any
    program that ran a worker in-process) went on after SIGTERM. (`redis`: an empty
    queue, so the worker's burst ends at once.)"""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, redis_url, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert "worker done" in done.stdout, done.stderr
    assert "survived SIGTERM" not in done.stdout
    assert done.returncode == -signal.SIGTERM


PAUSE_MS = 4_000


def test_a_stopping_worker_does_not_wait_on_its_pubsub_read(redis: Redis, redis_url: str) -> None:
    """CI caught a killed `hookbuild up` whose worker lived on past 30 s: redis-py 8's
    `PubSubWorkerThread.stop()` joins without a bound, and the thread was in a read no
    reply would end. A paused Redis holds UNSUBSCRIBE's reply back the same way."""
    worker = BuildWorker([Queue(QUEUE_NAME, connection=redis)], connection=redis, name="w1")
    worker.subscribe()  # type: ignore[no-untyped-call]
    admin = Redis.from_url(redis_url)
    # Under 5 s, redis-py's socket timeout; Redis 7.0 holds back even CLIENT UNPAUSE.
    admin.client_pause(PAUSE_MS, all=True)
    admin.close()
    started = time.monotonic()
    worker.unsubscribe()
    waited = time.monotonic() - started
    assert waited < PAUSE_MS / 1000 - 1, f"unsubscribe waited {waited:.1f} s, as long as the pause"
