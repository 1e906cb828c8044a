"""A build's log as the worker writes it: lines go to Redis in batches, never late.

One RPUSH a line made a chatty build slow: 20,000 lines cost ~4 s of round trips here,
where `docker build` itself took 0.4 s; batched, the whole build with its push takes ~1 s
(bench/chatty.py). Lines that come together
now go in one RPUSH (up to MAX_BATCH), and a line never waits more than FLUSH_SECONDS: a
thread flushes what is pending, so a line printed before a long silent step still shows
at once. `flush()` before any change of the build's state keeps the promise the follow
stream relies on: when a build is finished, all its lines are in Redis.
"""

from __future__ import annotations

import threading

from redis.exceptions import RedisError

from builder.logsink import DEFAULT_MAX_LINE_CHARS
from runners.records import BuildStore
from runners.servicelog import get_logger

FLUSH_SECONDS = 0.05
MAX_BATCH = 500
DEFAULT_MAX_LOG_CHARS = 50 * 1024 * 1024

log = get_logger(__name__)


class BuildLogWriter:
    def __init__(
        self,
        store: BuildStore,
        build_id: str,
        flush_seconds: float = FLUSH_SECONDS,
        max_batch: int = MAX_BATCH,
        max_chars: int = DEFAULT_MAX_LOG_CHARS,
        max_line: int = DEFAULT_MAX_LINE_CHARS,
    ) -> None:
        """`max_chars`: the log's size (logs.max_bytes), past which the build's output is
        no longer kept; `max_line`: a line's (logs.max_line_bytes), past which it is cut."""
        self.store = store
        self.build_id = build_id
        self.max_batch = max_batch
        self.max_chars = max_chars
        self.max_line = max_line
        self._written = 0
        self._cut = False
        self._cut_unsaved = False  # the record does not say yet that the log was cut
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flush_seconds = flush_seconds
        self._thread = threading.Thread(target=self._run, name="build-log", daemon=True)
        self._thread.start()

    def __call__(self, line: str) -> None:
        """A line of the build's output (or of hookbuild's about it), within the limits."""
        if len(line) > self.max_line:
            more = len(line) - self.max_line
            line = f"{line[: self.max_line]} [line cut: {more} more characters not kept]"
        with self._lock:
            if self._cut:
                return
            self._written += len(line) + 1
            if self._written > self.max_chars:
                # Cut once, said once; the build goes on and its last words still come
                # (`note`), so a reader of the log sees how it ended.
                self._cut = self._cut_unsaved = True
                line = (
                    f"==> the log is cut here: it reached its limit of {self.max_chars} "
                    "characters (logs.max_bytes); the build goes on"
                )
            self._append_locked(line)

    def note(self, line: str) -> None:
        """hookbuild's own line about the build's end: kept even past the log's limit."""
        with self._lock:
            self._append_locked(line[: self.max_line])

    @property
    def cut(self) -> bool:
        return self._cut

    def _append_locked(self, line: str) -> None:
        self._pending.append(line)
        if len(self._pending) >= self.max_batch:
            self._flush_locked()

    def flush(self) -> None:
        """Write every pending line now (raises what Redis raises)."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        self._closed.set()
        self.flush()

    def _flush_locked(self) -> None:
        if self._pending:
            self.store.append_log(self.build_id, self._pending)
            self._pending = []
        if self._cut_unsaved:
            self.store.update(self.build_id, log_cut=True)
            self._cut_unsaved = False

    def _run(self) -> None:
        while not self._closed.wait(self._flush_seconds):
            try:
                self.flush()
            except RedisError as exc:
                # The lines stay pending; the next tick (or the build's own flush) retries.
                log.warning(
                    "cannot write the build's log yet", build_id=self.build_id, error=str(exc)
                )
