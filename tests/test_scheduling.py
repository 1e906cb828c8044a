"""Scheduling with real worker processes and engines: cancel, supersede, fair share,
timeouts, worker signals, Redis restarts, an engine that goes away, two engines."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config
from runners.cli import main
from runners.queue import QUEUE_NAME
from runners.records import BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests import services
from tests.builds import finished, log_has, status_of
from tests.configs import load_config
from tests.conftest import GitRepo, MakeRepo
from tests.registry import RegistryReader
from tests.services import docker_env, wait_until
from tests.workers import TOKEN, WorkerProcess, deliver, write_config
from webhooks.app import create_app

pytestmark = pytest.mark.docker
SLOW = "FROM hookbuild-test/busybox\nRUN echo step-started && sleep {seconds} && echo step-done\n"
QUICK = "FROM hookbuild-test/busybox\nARG GREETING\nCOPY version.txt /version.txt\nRUN cat /version.txt > /commit.txt\n"


def containers(docker_host: str) -> list[str]:
    out = subprocess.run(
        ["docker", "-H", docker_host, "ps", "-aq"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


Setup = Callable[..., tuple[GitRepo, str, Path, Config, TestClient]]


@pytest.fixture
def setup(
    redis: Redis, redis_url: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> Setup:
    def make(
        rules: str, files: dict[str, str], extra: str = "", builder: str = "auto"
    ) -> tuple[GitRepo, str, Path, Config, TestClient]:
        name = f"sched-{os.urandom(3).hex()}/web"  # each test its own image in the shared registry
        repo = make_repo(name)
        sha = repo.commit(files)
        repo.push("main")
        path = write_config(
            tmp_path / "builds.yml",
            tmp_path / "state",
            registry.host,
            [(name, repo.url, rules)],
            extra,
            builder,
        )
        config = load_config(path, {})
        return repo, sha, path, config, TestClient(create_app(config, redis))

    return make


@pytest.fixture
def workers(redis_url: str) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def test_cancel_a_queued_build_with_the_cli(
    setup: Setup, redis: Redis, redis_url: str, registry: RegistryReader, docker_host: str
) -> None:
    repo, sha, path, config, client = setup(
        "      - {branch: main, tags: [queued]}\n", {"Dockerfile": QUICK, "version.txt": "q\n"}
    )
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "c1")

    result = CliRunner().invoke(
        main, ["cancel", build_id, "--config", str(path), "--redis-url", redis_url]
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{build_id} cancelled: cancelled with hookbuild cancel"
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 0
    run_worker(config, redis, docker_env(docker_host), burst=True, in_process=True)
    assert status_of(BuildStore(redis), build_id) is BuildStatus.CANCELLED
    assert registry.tags(repo.name) == []


def test_cancel_a_running_build_stops_it_on_the_engine(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [slow]}\n",
        {"Dockerfile": SLOW.format(seconds=120)},
        builder="classic",  # whose steps are containers; BuildKit's: test_buildkit.py
    )
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-cancel"))
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "r1")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    assert containers(docker_host), "the step runs in a container"

    unauthorized = client.post(f"/api/builds/{build_id}/cancel")
    response = client.post(
        f"/api/builds/{build_id}/cancel", headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert unauthorized.status_code == 401
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    wait_until(lambda: containers(docker_host) == [], 30, "the build's container to be removed")
    record = finished(store, build_id)
    assert record.status is BuildStatus.CANCELLED and record.error == "cancelled through the API"
    assert not log_has(store, build_id, "step-done")
    # The worker goes on serving.
    quick = repo.commit({"Dockerfile": QUICK, "version.txt": "after\n"})
    repo.push("main")
    [next_id] = deliver(client, repo.name, "refs/heads/main", quick, "r2")
    after = finished(store, next_id)
    assert after.status is BuildStatus.SUCCEEDED, after.error


def test_burst_of_20_pushes_builds_at_most_twice_and_ends_on_the_last(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    workers: list[WorkerProcess],
) -> None:
    slow_quick = "FROM hookbuild-test/busybox\nCOPY version.txt /version.txt\nRUN sleep 2 && cat /version.txt > /commit.txt\n"
    repo, first, path, _config, client = setup(
        "      - {branch: main, tags: [latest]}\n", {"Dockerfile": slow_quick, "version.txt": "0\n"}
    )
    shas = [first] + [repo.commit({"version.txt": f"{i}\n"}) for i in range(1, 20)]
    repo.push("main")
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-burst"))

    began = time.monotonic()
    ids = [
        deliver(client, repo.name, "refs/heads/main", sha, f"burst-{i}")[0]
        for i, sha in enumerate(shas)
    ]
    assert time.monotonic() - began < 2, "20 pushes within 2 seconds"
    store = BuildStore(redis)
    records = [finished(store, build_id) for build_id in ids]

    executed = [r for r in records if r.started_at is not None]
    assert len(executed) <= 2, [(r.id, r.status) for r in executed]
    assert records[-1].status is BuildStatus.SUCCEEDED
    assert all(r.status is BuildStatus.CANCELLED for r in records[:-1])
    assert records[0].error == f"superseded by {ids[1]}"
    assert registry.read_file(repo.name, "latest", "/commit.txt") == "19\n"


def test_timeout_fails_the_build_and_leaves_no_container(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [t], timeout: 4}\n",
        {"Dockerfile": SLOW.format(seconds=120)},
        builder="classic",  # whose steps are containers; BuildKit's: test_buildkit.py
    )
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-timeout"))
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "t1")

    record = finished(BuildStore(redis), build_id)

    assert record.status is BuildStatus.FAILED and record.error == "timed out after 4s"
    wait_until(lambda: containers(docker_host) == [], 30, "the build's container to be removed")


def test_sigterm_lets_the_worker_finish_its_build(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    workers: list[WorkerProcess],
) -> None:
    dockerfile = (
        "FROM hookbuild-test/busybox\nRUN echo step-started && sleep 4 && echo step-done > /done\n"
    )
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [graceful]}\n", {"Dockerfile": dockerfile}
    )
    worker = WorkerProcess(path, redis_url, docker_host, "w-term")
    workers.append(worker)  # stopped if the test fails before it does
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "s1")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")

    worker.signal(signal.SIGTERM)

    assert worker.stop() == 0
    assert finished(store, build_id).status is BuildStatus.SUCCEEDED
    assert registry.tags(repo.name) == ["graceful", "latest"]


def test_sigkill_of_a_worker_fails_its_build_within_60s_and_removes_the_container(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [killed]}\n",
        {"Dockerfile": SLOW.format(seconds=120)},
        builder="classic",  # whose steps are containers; BuildKit's: test_buildkit.py
    )
    doomed = WorkerProcess(path, redis_url, docker_host, "w-doomed")
    workers.append(doomed)  # stopped if the test fails before it does
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "k1")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-survivor"))

    killed_at = time.monotonic()
    doomed.signal(signal.SIGKILL)
    doomed.stop()

    record = finished(store, build_id)
    assert time.monotonic() - killed_at < 60
    assert record.status is BuildStatus.FAILED
    assert record.error == "the worker running it stopped (w-doomed: killed, crashed or lost)"
    wait_until(lambda: containers(docker_host) == [], 30, "the build's container to be removed")


def test_a_lost_build_is_started_again_when_configured(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    workers: list[WorkerProcess],
) -> None:
    dockerfile = "FROM hookbuild-test/busybox\nRUN echo step-started && sleep 6\n"
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [again]}\n",
        {"Dockerfile": dockerfile},
        extra="retries: {backoff_seconds: 0.1, lost_builds: 1}\n",
    )
    doomed = WorkerProcess(path, redis_url, docker_host, "w-lost")
    workers.append(doomed)  # stopped if the test fails before it does
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "l1")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    doomed.signal(signal.SIGKILL)
    doomed.stop()
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-second"))

    wait_until(
        lambda: status_of(store, build_id) is BuildStatus.SUCCEEDED, 120, "the retried build"
    )
    record = store.get(build_id)
    assert record is not None and record.attempt == 2 and record.worker == "w-second"
    assert any("starting it again (attempt 2)" in line for line in store.log_lines(build_id))
    assert registry.tags(repo.name) == ["again", "latest"]


def test_fair_share_one_busy_repository_does_not_starve_another(
    redis: Redis, registry: RegistryReader, docker_host: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    busy, quiet = make_repo("acme/busy"), make_repo("acme/quiet")
    busy_shas = []
    for i in range(4):
        busy_shas.append(busy.commit({"Dockerfile": QUICK, "version.txt": f"busy-{i}\n"}))
        busy.tag(f"v{i}")
    quiet_sha = quiet.commit({"Dockerfile": QUICK, "version.txt": "quiet\n"})
    quiet.push("main")
    tag_rule = "      - {tag: /^v.*$/, tags: ['{tag}']}\n"
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [
            ("acme/busy", busy.url, tag_rule),
            ("acme/quiet", quiet.url, "      - {branch: main, tags: [latest]}\n"),
        ],
        extra="max_running_per_repository: 1\n",
    )
    config: Config = load_config(path, {})
    client = TestClient(create_app(config, redis))
    busy_ids = [
        deliver(client, "acme/busy", f"refs/tags/v{i}", sha, f"b{i}")[0]
        for i, sha in enumerate(busy_shas)
    ]
    [quiet_id] = deliver(client, "acme/quiet", "refs/heads/main", quiet_sha, "q")

    positions = [
        client.get(f"/api/builds/{i}").json()["queue_position"] for i in [*busy_ids, quiet_id]
    ]
    assert positions == [1, 3, 4, 5, 2], "the quiet repository's build is second in line"
    listing = CliRunner().invoke(
        main,
        [
            "builds",
            "--config",
            str(path),
            "--redis-url",
            f"redis://127.0.0.1:{redis.connection_pool.connection_kwargs['port']}/0",
        ],
    )
    assert "queued(#2)" in listing.output

    run_worker(config, redis, docker_env(docker_host), burst=True, in_process=True)

    store = BuildStore(redis)
    records = {r.id: r for r in store.get_many([*busy_ids, quiet_id])}
    assert all(r.status is BuildStatus.SUCCEEDED and r.started_at for r in records.values())
    order = sorted(records, key=lambda i: records[i].started_at or 0.0)
    assert order == [busy_ids[0], quiet_id, *busy_ids[1:]]


def test_redis_restart_loses_no_queued_build(
    registry: RegistryReader, docker_host: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    service, port = services.start_redis(tmp_path / "own-redis")
    repo = make_repo("persist/web")
    sha = repo.commit({"Dockerfile": QUICK, "version.txt": "survives\n"})
    repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: main, tags: [persisted]}\n")],
    )
    config = load_config(path, {})
    try:
        connection = Redis(port=port)
        [build_id] = deliver(
            TestClient(create_app(config, connection)), repo.name, "refs/heads/main", sha, "p1"
        )
        connection.close()
        service.stop()  # redis-server writes its append-only file on the way down
        service, _ = services.start_redis(tmp_path / "own-redis", port=port)
        connection = Redis(port=port)
        run_worker(config, connection, docker_env(docker_host), burst=True, in_process=True)
        assert status_of(BuildStore(connection), build_id) is BuildStatus.SUCCEEDED
        assert registry.read_file(repo.name, "persisted", "/commit.txt") == "survives\n"
        connection.close()
    finally:
        service.stop()
