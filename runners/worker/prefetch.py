"""Start fetching a build's commit the moment a worker takes the build.

Between taking a build and its pipeline's first step, the worker forks the work horse and
RQ and hookbuild set the job up: about 40 ms here. The fetch then mostly waits on the
network (about 70 ms against a local git daemon, a round trip or two to a real forge).
Started as the worker takes the build, in a git process that holds the mirror's lock
(`MirrorCache.start_fetch`), the fetch overlaps that set-up; the pipeline's own fetch
waits for the lock and finds the commit there.

Best effort: a background fetch that fails or is slow changes nothing but time, as the
pipeline's fetch then does the work, with its retries and its log lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from builder.build.source import MirrorCache
from builder.plan import BuildPlan
from runners.records import BuildRecord
from runners.worker.context import WorkerContext

# Build ids whose commit this worker started fetching. A forked work horse inherits it,
# so its log can say where the commit came from.
_started: set[str] = set()


def start(context: WorkerContext, record: BuildRecord) -> subprocess.Popen[bytes] | None:
    if record.plan is None:
        return None
    plan = BuildPlan.from_dict(dict(record.plan))
    if context.config.clone_url_problem(plan.forge, plan.repository, plan.clone_url):
        return None  # the pipeline refuses it, and says why in the build's log
    credentials = context.config.clone_credentials(plan.forge, plan.repository)
    mirrors = MirrorCache(context.state_dir / "mirrors").for_repository(plan.forge, plan.repository)
    try:
        process = mirrors.start_fetch(plan.clone_url, plan.ref, plan.sha, credentials)
    except OSError:
        return None
    if process is not None:
        _started.add(record.id)
    return process


def started(build_id: str) -> bool:
    return build_id in _started


def finish(build_id: str, process: subprocess.Popen[bytes] | None) -> None:
    """Reap the background fetch once its build is over; stop it if it still runs (its
    build ended without waiting for it: cancelled, or its work horse died)."""
    _started.discard(build_id)
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
