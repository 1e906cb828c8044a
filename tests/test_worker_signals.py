"""A process that ran a worker in-process keeps its own signal handlers afterwards."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from redis import Redis

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from redis import Redis
    from builder.config import parse_config
    from runners.worker import run_worker

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
