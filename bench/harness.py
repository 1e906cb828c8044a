"""The real services for benchmarks (the tests' own starters), and helpers to drive them:
git repositories, a running `hookbuild serve` and workers, signed deliveries, timings."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import httpx2 as httpx

from builder.configtypes import Builder
from tests import services
from tests.registry import RegistryReader
from tests.signing import forge_headers

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "webhooks"
SECRET = "bench-secret"
ENV_BASE = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}


def add_builder_option(parser: argparse.ArgumentParser) -> None:
    """`--builder`: the `builder:` hookbuild's repositories get in a bench."""
    parser.add_argument(
        "--builder",
        choices=get_args(Builder),
        default="auto",
        help="hookbuild's `builder:` (default auto: BuildKit here)",
    )


def git(cwd: Path, *args: str) -> str:
    env = {
        **ENV_BASE,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class Repo:
    name: str
    work: Path
    bare: Path
    url: str

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for path, content in files.items():
            (self.work / path).parent.mkdir(parents=True, exist_ok=True)
            (self.work / path).write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "--force", str(self.bare), "HEAD:refs/heads/main")
        return git(self.work, "rev-parse", "HEAD")


@dataclass
class Bench:
    root: Path
    redis_port: int
    registry: RegistryReader
    docker_hosts: list[str]
    git_base: Path
    git_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def repo(self, name: str) -> Repo:
        slug = name.replace("/", "-")
        bare = self.git_base / f"{slug}.git"
        git(self.git_base, "init", "-q", "--bare", "-b", "main", str(bare))
        work = self.root / "work" / slug
        work.mkdir(parents=True)
        git(work, "init", "-q", "-b", "main")
        return Repo(name, work, bare, f"git://127.0.0.1:{self.git_port}/{slug}.git")

    def config(self, repositories: list[tuple[Repo, str]], extra: str = "", port: int = 0) -> Path:
        """A config file: each (repo, rules yaml); images go to the bench registry."""
        body = "".join(
            f"  - name: {repo.name}\n    forge: github\n    secret: {SECRET}\n    clone_url: {repo.url}\n"
            f"    image: {self.registry.host}/{repo.name}\n    rules:\n{rules}"
            for repo, rules in repositories
        )
        path = self.root / f"builds-{len(list(self.root.glob('builds-*.yml')))}.yml"
        path.write_text(
            f"state_dir: {self.root / 'state'}\nserver: {{listen: 127.0.0.1:{port or services.free_port()}}}\n"
            f"{extra}repositories:\n{body}"
        )
        return path

    def serve(self, config: Path, processes: int = 1) -> str:
        """`hookbuild serve`; returns its base URL."""
        listen = next(
            line.split("listen: ")[1].rstrip("}")
            for line in config.read_text().splitlines()
            if "listen:" in line
        )
        self._spawn(
            [
                "serve",
                "--config",
                str(config),
                "--redis-url",
                self.redis_url,
                "--processes",
                str(processes),
            ],
            {},
        )
        port = int(listen.rsplit(":", 1)[1])
        services.wait_until(lambda: services.port_open(port), 30, "hookbuild serve")
        return f"http://{listen}"

    def worker(self, config: Path, docker_host: str, name: str) -> subprocess.Popen[bytes]:
        return self._spawn(
            ["worker", "--config", str(config), "--redis-url", self.redis_url, "--name", name],
            {"DOCKER_HOST": docker_host},
        )

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"proc-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "runners.cli", *args],
            env={**ENV_BASE, "PYTHONPATH": str(ROOT), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def push_body(repository: str, ref: str, sha: str, before: str = "0" * 40) -> bytes:
    payload = json.loads((FIXTURES / "github/push-branch-goscm.json").read_bytes())
    payload.update(ref=ref, after=sha, before=before)
    payload["repository"].update(full_name=repository, default_branch="main")
    return json.dumps(payload).encode()


@dataclass
class Answer:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def deliver(
    base: str, repository: str, ref: str, sha: str, delivery: str, before: str = "0" * 40
) -> Answer:
    """A signed push, sent as a forge sends it: headers and body in one write. (httpx sends
    them apart, and Nagle's algorithm with delayed ACKs then adds ~40 ms here to what the
    server answers in ~4 ms: a figure of the client, not of hookbuild.)"""
    body = push_body(repository, ref, sha, before)
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        headers = forge_headers("github", "push", body, SECRET, delivery)
        connection.request("POST", "/hooks/github", body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.read().decode())
    finally:
        connection.close()


def wait_for_build(base: str, build_id: str, timeout: float = 600, interval: float = 0.05) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = httpx.get(f"{base}/api/builds/{build_id}", timeout=10).json()
        if record["status"] not in ("queued", "running"):
            return record  # type: ignore[no-any-return]
        time.sleep(interval)
    raise TimeoutError(build_id)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def bench(engines: int = 1) -> Iterator[Bench]:
    """Start Redis, a registry, `engines` dockerd (each with the busybox base) and git daemon."""
    with ExitStack() as stack:
        short = stack.enter_context(services.short_dir("bench"))
        redis, redis_port = services.start_redis(short / "redis")
        stack.callback(redis.stop)
        registry, registry_port = services.start_registry(short / "registry")
        stack.callback(registry.stop)
        hosts: list[str] = []
        for index in range(engines):
            # As scripts/up starts its engine: BuildKit clips no step's output.
            engine, host = services.start_dockerd(short / f"d{index}", services.UNCLIPPED_LOGS)
            stack.callback(engine.stop, 30)
            if index == 0:
                services.import_busybox(host, short / "busybox")
            else:
                services.copy_image(hosts[0], host, services.BASE_IMAGE)
            hosts.append(host)
        git_base = short / "git"
        git_base.mkdir()
        daemon, git_port = services.start_git_daemon(git_base)
        stack.callback(daemon.stop)
        harness = Bench(short, redis_port, RegistryReader(registry_port), hosts, git_base, git_port)
        stack.callback(harness.stop_processes)
        yield harness


def plain_script(
    docker_host: str,
    clone_url: str,
    image: str,
    tags: list[str],
    workdir: Path,
    labels: dict[str, str] | None = None,
) -> float:
    """The baseline: git clone --depth 1 && docker build && docker tag && docker push (each
    tag). With `labels`, `docker build --label` for each, as hookbuild labels its images."""
    env = {**ENV_BASE, "DOCKER_HOST": docker_host}
    target = workdir / f"clone-{time.monotonic_ns()}"
    started = time.monotonic()
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", clone_url, str(target)], env=env, check=True
    )
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            *(f"--label={key}={value}" for key, value in (labels or {}).items()),
            "-t",
            f"{image}:{tags[0]}",
            str(target),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    for tag in tags[1:]:
        subprocess.run(
            ["docker", "tag", f"{image}:{tags[0]}", f"{image}:{tag}"], env=env, check=True
        )
    for tag in tags:
        subprocess.run(
            ["docker", "push", "-q", f"{image}:{tag}"], env=env, check=True, capture_output=True
        )
    return time.monotonic() - started


@dataclass
class IntakeLoad:
    rate: float  # deliveries a second
    p50_ms: float
    p99_ms: float
    failures: int  # answers other than 202
    acknowledged: list[str]  # build ids answered, for the caller to check each has its record


def intake(
    base: str, repository: str, count: int, concurrency: int = 32, prefix: str = "load"
) -> IntakeLoad:
    """Send `count` signed tag pushes (each a new tag, so each queues a build) over
    `concurrency` connections."""
    import asyncio

    bodies = []
    for i in range(count):
        body = push_body(
            repository, f"refs/tags/{prefix}-{i}", f"{i + 1:040x}"
        )  # 0 would be a deletion
        bodies.append(
            (body, forge_headers("github", "push", body, SECRET, f"{prefix}-{i}-{time.time_ns()}"))
        )
    latencies: list[float] = []
    acknowledged: list[str] = []
    failures = 0

    async def run() -> float:
        nonlocal failures
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
            for item in bodies:
                queue.put_nowait(item)

            async def one_connection() -> None:
                nonlocal failures
                while not queue.empty():
                    body, headers = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post("/hooks/github", content=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    if response.status_code == 202:
                        acknowledged.extend(response.json()["builds"])
                    else:
                        failures += 1
                        print(f"failed: {response.status_code} {response.text[:200]}")

            began = time.perf_counter()
            await asyncio.gather(*(one_connection() for _ in range(concurrency)))
            return time.perf_counter() - began

    elapsed = asyncio.run(run())
    return IntakeLoad(
        rate=count / elapsed,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        failures=failures,
        acknowledged=acknowledged,
    )
