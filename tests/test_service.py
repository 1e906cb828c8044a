"""The real `hookbuild up` process tree: private Redis, HTTP receiver, worker processes, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from redis import Redis

from tests import configs
from tests.conftest import MakeRepo, github_push_body, github_signature, local_clone_settings
from tests.helpers import DOCKERFILE, SECRET
from tests.registry import RegistryReader
from tests.services import docker_env, free_port, port_open, wait_until

pytestmark = pytest.mark.docker


def write_config(
    path: Path, state: Path, port: int, registry: RegistryReader, workers: int
) -> None:
    """`hookbuild up` on `port` with `workers` workers: acme/web from the git daemon, its
    secret from $ACME_WEB_SECRET."""
    entry = configs.repository(
        "acme/web",
        f"{registry.host}/service/web",
        secret="${ACME_WEB_SECRET}",
        extra=local_clone_settings(),
        build_args={"GREETING": "from-service"},
    )
    configs.config_file(
        path,
        state,
        [entry],
        server={"listen": f"127.0.0.1:{port}"},
        workers=workers,
        registries=[{"host": registry.host, "insecure": True}],
    )


class Running:
    def __init__(
        self,
        config: Path,
        port: int,
        env: dict[str, str],
        workers: int | None = None,
        processes: int | None = None,
        stderr: Path | None = None,
    ) -> None:
        self.config, self.port, self.env = config, port, env
        args = ["up", "--config", str(config)]
        args += ["--workers", str(workers)] if workers is not None else []
        args += ["--processes", str(processes)] if processes is not None else []
        output = open(stderr, "wb") if stderr else None  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runners.cli", *args], env=env, stderr=output
        )
        if output is not None:
            output.close()
        wait_until(lambda: port_open(port), 30, "hookbuild up")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runners.cli", *args, "--config", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def env(docker_host: str) -> Iterator[dict[str, str]]:
    yield {**docker_env(docker_host), "ACME_WEB_SECRET": SECRET, "PYTHONPATH": os.getcwd()}


def deliver(port: int, body: bytes, delivery: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/hooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": github_signature(SECRET, body),
        },
        timeout=10,
    )


def test_up_builds_a_webhook_and_the_cli_shows_it(
    env: dict[str, str], registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "service\n"})
    repo.push("main")
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=2)
    service = Running(config, port, env)
    try:
        response = deliver(
            port, github_push_body("acme/web", "refs/heads/main", sha, repo.url), "s-1"
        )
        assert response.status_code == 202, response.text
        [build_id] = response.json()["builds"]

        follow = service.cli("logs", build_id, "--follow")
        assert follow.returncode == 0, follow.stdout + follow.stderr
        assert f"==> pushed {registry.host}/service/web:latest" in follow.stdout
        assert "[1/3] FROM docker.io/hookbuild-test/busybox" in follow.stdout  # BuildKit's

        listing = service.cli("builds")
        assert listing.returncode == 0, listing.stderr
        header, row = listing.stdout.splitlines()[:2]
        assert header.split() == ["ID", "REPOSITORY", "REF", "SHA", "STATUS", "DURATION", "TAGS"]
        assert row.split()[:5] == [build_id, "acme/web", "refs/heads/main", sha[:7], "succeeded"]
        assert row.split()[-1] == f"latest,{sha[:7]}"

        api = httpx.get(f"http://127.0.0.1:{port}/api/builds/{build_id}", timeout=5).json()
        assert api["status"] == "succeeded"
        assert api["digest"] == registry.digest("service/web", "latest")
        assert registry.read_file("service/web", sha[:7], "/greeting") == "from-service\n"
        # The private Redis lives in the state directory, on a unix socket only.
        assert (tmp_path / "state" / "redis" / "redis.sock").exists()
    finally:
        assert service.stop() == 0


def test_restart_of_up_loses_no_queued_build(
    env: dict[str, str], registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "restart\n"})
    repo.push("main")
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=1)

    first = Running(config, port, env, workers=0)  # accepts, builds nothing
    response = deliver(port, github_push_body("acme/web", "refs/heads/main", sha, repo.url), "r-1")
    assert response.status_code == 202
    [build_id] = response.json()["builds"]
    assert first.stop() == 0

    second = Running(config, port, env)
    try:
        follow = second.cli("logs", build_id, "--follow")
        assert follow.returncode == 0, follow.stdout + follow.stderr
        assert registry.digest("service/web", sha[:7])
    finally:
        assert second.stop() == 0


def test_logs_follow_exits_1_for_a_failed_build(
    env: dict[str, str], registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    sha = repo.commit(
        {"Dockerfile": "FROM hookbuild-test/busybox\nRUN echo broken-step && exit 3\n"}
    )
    repo.push("main")
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=1)
    service = Running(config, port, env)
    try:
        response = deliver(
            port, github_push_body("acme/web", "refs/heads/main", sha, repo.url), "f-1"
        )
        [build_id] = response.json()["builds"]
        follow = service.cli("logs", build_id, "--follow")
        assert follow.returncode == 1
        assert "broken-step" in follow.stdout
        assert "exit code: 3" in follow.stderr  # BuildKit's words for it
    finally:
        assert service.stop() == 0


def test_killing_up_leaves_no_worker_or_redis_behind(
    env: dict[str, str], registry: RegistryReader, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=2)
    service = Running(config, port, env)
    children_file = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    children = [int(pid) for pid in children_file.read_text().split()]
    assert len(children) == 3  # redis-server and two workers

    service.process.kill()
    service.process.wait()

    def all_gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in children)

    wait_until(all_gone, 30, "the children of a killed `hookbuild up` to exit")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def test_up_serving_from_two_processes_builds_and_dies_whole(
    env: dict[str, str], registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "two processes\n"})
    repo.push("main")
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=1)
    service = Running(config, port, env, processes=2)
    try:
        response = deliver(
            port, github_push_body("acme/web", "refs/heads/main", sha, repo.url), "two-1"
        )
        assert response.status_code == 202, response.text
        [build_id] = response.json()["builds"]
        follow = service.cli("logs", build_id, "--follow")
        assert follow.returncode == 0, follow.stdout + follow.stderr
        assert registry.digest("service/web", sha[:7])
        serving = [
            pid
            for pid in _children(service.process.pid)
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(serving) >= 2, "uvicorn's spawned serving processes"
    finally:
        everyone = _descendants(service.process.pid)
        service.process.kill()
        service.process.wait()

    def all_gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in everyone)

    wait_until(all_gone, 30, "every process of a killed `hookbuild up` to exit")


def test_up_says_which_engine_it_tried_and_a_build_there_names_its_socket(
    env: dict[str, str], registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#16.5: `hookbuild up` with no engine at DOCKER_HOST says so at start, naming the
    socket and why; it keeps serving, and a build queued there fails naming the socket."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "no engine\n"})
    repo.push("main")
    port = free_port()
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", port, registry, workers=1)
    socket = tmp_path / "no-engine" / "docker.sock"
    stderr = tmp_path / "up.log"
    service = Running(config, port, {**env, "DOCKER_HOST": f"unix://{socket}"}, stderr=stderr)
    try:
        response = deliver(
            port, github_push_body("acme/web", "refs/heads/main", sha, repo.url), "n-1"
        )
        assert response.status_code == 202, response.text
        [build_id] = response.json()["builds"]
        api = f"http://127.0.0.1:{port}/api/builds/{build_id}"
        wait_until(lambda: httpx.get(api, timeout=5).json()["status"] == "failed", 60, "a failure")
        error = httpx.get(api, timeout=5).json()["error"]
        assert error == f"the Docker engine is not reachable at unix://{socket}: no such socket"
        log = httpx.get(f"{api}/log", timeout=5).text
        assert f"==> FAILED: {error}" in log
    finally:
        assert service.stop() == 0
    started = stderr.read_text()
    assert f"no Docker engine answers at DOCKER_HOST=unix://{socket}: no such socket" in started
    assert started.count("no Docker engine answers") == 1, "up says it once, not once a worker"


def test_a_worker_says_at_start_which_engine_answers_and_its_version(
    redis: Redis, redis_url: str, docker_host: str, registry: RegistryReader, tmp_path: Path
) -> None:
    """#16.5: `hookbuild worker` names the engine it builds on and its version; with
    DOCKER_HOST unset, it names the default socket it tried."""
    config = tmp_path / "builds.yml"
    write_config(config, tmp_path / "state", free_port(), registry, workers=1)
    command = [sys.executable, "-m", "runners.cli", "worker", "--burst"]

    def worker_log(environ: dict[str, str]) -> str:
        run = subprocess.run(
            [*command, "--config", str(config), "--redis-url", redis_url],
            env={**environ, "ACME_WEB_SECRET": SECRET, "PYTHONPATH": os.getcwd()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        return run.stderr

    answered = worker_log(docker_env(docker_host))
    assert f"Docker engine at DOCKER_HOST={docker_host}: Docker " in answered, answered
    unset = worker_log({k: v for k, v in docker_env(docker_host).items() if k != "DOCKER_HOST"})
    default = "the default socket unix:///var/run/docker.sock"
    assert f"Docker engine at {default}: Docker " in unset or (
        f"no Docker engine answers at {default}: " in unset
    ), unset
