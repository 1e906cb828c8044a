"""A private redis-server owned by `hookbuild up` when the config names no Redis.

It listens only on a unix socket in the state directory and keeps an append-only file
there, so a restart of hookbuild (or of the machine) loses no queued build.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from builder.errors import HookbuildError
from runners.children import spawn


class PrivateRedis:
    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "redis"
        self.socket = self.directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except RedisError:
            return False

    def start(self, timeout: float = 10.0) -> None:
        if self.running():
            return  # another `hookbuild up` on this state directory owns it; share it
        binary = shutil.which("redis-server")
        if binary is None:
            raise HookbuildError(
                "redis-server is not installed: `apt-get install redis-server`, or set redis.url"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = spawn(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HookbuildError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.directory / 'redis.log'}"
                )
            if self.running():
                return
            time.sleep(0.05)
        raise HookbuildError(f"redis-server did not answer within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
