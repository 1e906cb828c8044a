"""Real services for the tests: redis-server, docker-registry, dockerd and git daemon.

Each runs from Debian's binaries on 127.0.0.1 (or a unix socket) in a temporary directory,
and is stopped at the end of the session. No mocks: the tests talk to the real thing.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from redis import Redis

BASE_IMAGE = "hookbuild-test/busybox:latest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - the service is still starting
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    log: Path
    log_handle: IO[bytes]

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_handle.close()


def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Service:
    handle = open(log, "wb")  # noqa: SIM115 - lives as long as the service
    process = subprocess.Popen(
        argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    return Service(process, log, handle)


def start_redis(directory: Path, port: int | None = None) -> tuple[Service, int]:
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    service = start(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        directory / "redis.log",
    )
    wait_until(lambda: port_open(port), 10, "redis-server")
    return service, port


def script_calls(connection: Redis) -> int:
    """Script calls (EVAL, EVALSHA) this Redis has run since its stats were last reset."""
    stats = connection.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


def start_registry(directory: Path, htpasswd: tuple[str, str] | None = None) -> tuple[Service, int]:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    auth = ""
    if htpasswd:
        subprocess.run(
            ["htpasswd", "-Bbc", str(directory / "htpasswd"), *htpasswd],
            check=True,
            capture_output=True,
        )
        auth = (
            f"auth:\n  htpasswd:\n    realm: hookbuild-test\n    path: {directory / 'htpasswd'}\n"
        )
    (directory / "config.yml").write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    service = start(
        ["docker-registry", "serve", str(directory / "config.yml")], directory / "registry.log"
    )
    wait_until(lambda: port_open(port), 10, "docker-registry")
    return service, port


@contextlib.contextmanager
def short_dir(name: str) -> Iterator[Path]:
    """A directory with a short path, outside pytest's temporary tree: unix socket paths
    (dockerd's and containerd's) must stay under 108 bytes, and a dockerd data root holds
    mounts that pytest's own clean-up of old temporary trees cannot remove."""
    directory = Path(tempfile.mkdtemp(prefix=f"hb-{name}-", dir="/tmp"))
    try:
        yield directory
    finally:
        subprocess.run(
            ["umount", "-R", "-l", str(directory / "data")], capture_output=True, check=False
        )
        shutil.rmtree(directory, ignore_errors=True)


# What scripts/up starts its own dockerd with: BuildKit then clips no step's output.
UNCLIPPED_LOGS = {
    "BUILDKIT_STEP_LOG_MAX_SIZE": "1073741824",
    "BUILDKIT_STEP_LOG_MAX_SPEED": "1073741824",
}


# The tests' engines have no network: builds reach nothing beyond the machine.
NO_BRIDGE = ("--bridge=none", "--iptables=false", "--ip-masq=false")


def start_dockerd(
    directory: Path, env: dict[str, str] | None = None, network: Sequence[str] = NO_BRIDGE
) -> tuple[Service, str]:
    """dockerd as the tests need it; `env`: more of its environment; `network`: its
    network flags (`bridge()`'s give it a bridge of its own)."""
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "docker.sock"
    service = start(
        [
            "dockerd",
            "--host",
            f"unix://{sock}",
            "--data-root",
            str(directory / "data"),
            "--exec-root",
            str(directory / "exec"),
            "--pidfile",
            str(directory / "docker.pid"),
            *network,
        ],
        directory / "dockerd.log",
        {**os.environ, **env} if env else None,
    )
    host = f"unix://{sock}"
    wait_until(
        lambda: (
            subprocess.run(["docker", "-H", host, "version"], capture_output=True).returncode == 0
        ),
        60,
        "dockerd",
    )
    return service, host


@contextlib.contextmanager
def bridge() -> Iterator[tuple[str, ...]]:
    """A Linux bridge of this test's own, as dockerd's network flags: its containers get an
    `eth0` on it, as on an engine with Docker's default networking. Not docker0, so it
    stands beside any other engine here; no iptables rules, no masquerading, so nothing a
    container sends is forwarded off the machine."""
    name = f"hb{uuid.uuid4().hex[:10]}"
    taken = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    third = next(n for n in random.sample(range(1, 255), 254) if f"10.213.{n}." not in taken)
    for command in (
        ["ip", "link", "add", "name", name, "type", "bridge"],
        ["ip", "addr", "add", f"10.213.{third}.1/24", "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    try:
        yield (f"--bridge={name}", "--iptables=false", "--ip-masq=false", "--ip6tables=false")
    finally:
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def import_busybox(docker_host: str, directory: Path) -> str:
    """A base image made locally (nothing can be pulled here): Debian's busybox-static."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    rootfs = directory / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(exist_ok=True)
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    for applet in (
        "sh",
        "echo",
        "cat",
        "mkdir",
        "ls",
        "test",
        "true",
        "false",
        "sleep",
        "cp",
        "wc",
    ):
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    tar = directory / "rootfs.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(rootfs, arcname=".")
    subprocess.run(
        ["docker", "-H", docker_host, "import", str(tar), BASE_IMAGE],
        check=True,
        capture_output=True,
    )
    return BASE_IMAGE


def copy_image(source_host: str, target_host: str, image: str) -> None:
    saved = subprocess.run(
        ["docker", "-H", source_host, "save", image], capture_output=True, check=True
    )
    subprocess.run(
        ["docker", "-H", target_host, "load"], input=saved.stdout, capture_output=True, check=True
    )


def publish_elsewhere(
    docker_host: str, reference: str, auth: tuple[str, str] | None = None
) -> None:
    """Push the base image to a registry as `reference` (`host/name:tag`), and leave the
    engine without it: an image the engine must pull to have."""
    import docker

    engine = docker.APIClient(base_url=docker_host)
    try:
        repository, _, tag = reference.rpartition(":")
        engine.tag(BASE_IMAGE, repository, tag)
        auth_config = {"username": auth[0], "password": auth[1]} if auth else None
        for _ in engine.push(repository, tag, stream=True, auth_config=auth_config):
            pass
        engine.remove_image(reference)
    finally:
        engine.close()


def start_git_daemon(base: Path) -> tuple[Service, int]:
    port = free_port()
    service = start(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        base.parent / f"git-daemon-{port}.log",
    )
    wait_until(lambda: port_open(port), 10, "git daemon")
    return service, port


def docker_env(host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = host
    return env


@contextlib.contextmanager
def live_server(app: object, port: int | None = None) -> Iterator[str]:
    """The ASGI `app` served by uvicorn on 127.0.0.1, in a thread; yields its base URL.
    For clients that speak real HTTP (the CLI, a browser), where TestClient cannot reach.
    On leaving, open streams are cut after a second, as a restarting server cuts them."""
    import threading

    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, "the live server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
