"""`hookbuild up`'s build workers: N `hookbuild worker` processes, each started again if it
dies, all stopped (finishing or handing back their builds) when `up` stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from runners import servicelog
from runners.children import spawn

log = servicelog.get_logger("hookbuild")


class WorkerSupervisor:
    """Keeps N `hookbuild worker` processes running; a worker that dies is started again."""

    def __init__(
        self, config_path: str, redis_url: str, count: int, logging_options: list[str]
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "runners.cli",
            *logging_options,  # workers log as `up` does
            "worker",
            "--config",
            config_path,
            "--redis-url",
            redis_url,
            "--engine-announced",
        ]
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self.processes = [spawn(self.command) for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for index, process in enumerate(self.processes):
                if process.poll() is not None and not self._stopping.is_set():
                    log.warning("worker exited; starting another", exit_code=process.returncode)
                    self.processes[index] = spawn(self.command)

    def stop(self, grace: float = 30.0) -> None:
        self._stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
