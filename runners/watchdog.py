"""A running build's companion thread: it keeps the build's heartbeat alive, and stops the
build when someone cancels it or when it runs past its timeout.

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

from redis.exceptions import RedisError

from runners.records import BuildStatus, BuildStore
from runners.servicelog import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 5.0
POLL_SECONDS = 0.5


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
