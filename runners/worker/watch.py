"""A running build's companion threads: they keep the build's heartbeat alive, and stop the
build when someone cancels it or when it runs past its timeout.

`BuildWatchdog` runs beside the build in its work horse; `HorseWatch` in the worker that
forked the horse, so that the timeout holds and the heartbeat goes on whatever the horse's
threads are doing (a long C call holding the GIL, a stopped process): it ends the horse a
few seconds past the timeout, if the horse's own watchdog did not.

Stopping means ending the work horse process: the Docker engine then sees its build
request's connection close, cancels the build and removes the step's container (checked
against dockerd). In-process workers (tests, `--burst` debugging) cannot end themselves;
there the build runs on and its record simply stays cancelled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from runners.records import BuildStatus, BuildStore

if TYPE_CHECKING:
    from runners.queue import BuildQueue
from runners.servicelog import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.5
WATCH_SECONDS = 1.0
# The horse's own watchdog stops a build at its timeout, its log in order; the worker
# steps in only this much later.
GRACE_SECONDS = 5.0


class BuildWatchdog(threading.Thread):
    def __init__(
        self,
        store: BuildStore,
        build_id: str,
        worker: str,
        cancel_key: str,
        can_kill: bool,
        timeout: float,
        before_stop: Callable[[], None] = lambda: None,
    ) -> None:
        """`before_stop`: called before the watchdog writes its own line and stops the
        build (the build's log writer flushing what it holds, so lines stay in order)."""
        super().__init__(name=f"watchdog-{build_id}", daemon=True)
        self.before_stop = before_stop
        self.store = store
        self.connection = store.connection
        self.build_id = build_id
        self.worker = worker
        self.cancel_key = cancel_key
        self.can_kill = can_kill
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._done = threading.Event()

    def run(self) -> None:
        beats = 0.0
        while not self._done.wait(POLL_SECONDS):
            try:
                beats += POLL_SECONDS
                if beats >= HEARTBEAT_SECONDS:
                    self.store.heartbeat(self.build_id, self.worker)
                    beats = 0.0
                if self.connection.exists(self.cancel_key):
                    self._flush_log()
                    self._stop_build("cancelled")
                    return
                if time.monotonic() > self._deadline:
                    self._flush_log()
                    reason = f"timed out after {self.timeout:.0f}s"
                    if self.store.finish(self.build_id, BuildStatus.FAILED, error=reason):
                        self.store.append_log(self.build_id, [f"==> FAILED: {reason}"])
                    self._stop_build(reason)
                    return
            except RedisError:
                continue  # Redis away for a moment: the heartbeat's TTL covers a short gap

    def _flush_log(self) -> None:
        with contextlib.suppress(RedisError):
            self.before_stop()

    def _stop_build(self, why: str) -> None:
        # A thread: the job's bound build id does not reach here, so it is named.
        log.warning("stopping the build", build_id=self.build_id, why=why)
        if self.can_kill:
            os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        self._done.set()


class HorseWatch(threading.Thread):
    """The worker's watch over the build its work horse runs (`horse_pid()`; 0 before the
    fork and after the horse ended): the build's heartbeat, and its timeout enforced."""

    def __init__(
        self,
        queue: BuildQueue,
        build_id: str,
        worker: str,
        horse_pid: Callable[[], int],
        grace: float = GRACE_SECONDS,
    ) -> None:
        super().__init__(name=f"horse-watch-{build_id}", daemon=True)
        self.queue = queue
        self.store = queue.store
        self.build_id = build_id
        self.worker = worker
        self.horse_pid = horse_pid
        self.grace = grace
        self._done = threading.Event()

    def run(self) -> None:
        noted = False  # said once, not every second
        while not self._done.wait(WATCH_SECONDS):
            try:
                if self._watch():
                    return
            except RedisError:
                continue  # as the horse's watchdog: the heartbeat's TTL covers a short gap
            except Exception as exc:  # a damaged record: the watch goes on, as the worker
                if not noted:
                    log.warning("cannot watch the build", build_id=self.build_id, error=str(exc))
                noted = True

    def _watch(self) -> bool:
        """One look; True once the horse was ended."""
        pid = self.horse_pid()
        if not pid:
            return False
        status, started_at, plan, worker = self.store.fields(
            self.build_id, "status", "started_at", "plan", "worker"
        )
        if status != BuildStatus.RUNNING.value or worker != self.worker:
            return False
        self.store.heartbeat(self.build_id, self.worker)
        timeout = plan.get("timeout") if isinstance(plan, dict) else None
        if not isinstance(timeout, int | float) or not isinstance(started_at, int | float):
            return False
        if time.time() < started_at + timeout + self.grace:
            return False
        reason = f"timed out after {timeout:.0f}s"
        if self.store.finish(self.build_id, BuildStatus.FAILED, error=reason):
            self.store.append_log(
                self.build_id, [f"==> FAILED: {reason} (the worker ended its unanswering build)"]
            )
        log.warning("ending a build past its timeout", build_id=self.build_id, pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the horse leads its own process group (RQ)
        self.queue.release(self.build_id, str(self.store.field(self.build_id, "repository")))
        return True

    def stop(self) -> None:
        self._done.set()
