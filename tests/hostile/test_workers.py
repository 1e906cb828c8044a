"""Hostile input against the workers: bad jobs, huge logs, killed builds, a vanishing engine.

Findings 8 (worker half), 9, 10, 16 and 19 of issue 15. Every test runs real worker
processes (or the real pipeline) against the real Redis, dockerd, registry and git.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config, load_config
from builder.plan import BuildPlan
from runners.queue import BuildQueue
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests.conftest import GitRepo, MakeRepo
from tests.helpers import step_output
from tests.registry import RegistryReader
from tests.services import wait_until
from tests.workers import WorkerProcess, deliver, write_config
from webhooks.app import create_app

QUICK = "FROM hookbuild-test/busybox\nCOPY version.txt /version.txt\nRUN cat /version.txt\n"
SLOW = "FROM hookbuild-test/busybox\nRUN echo step-started && sleep {seconds} && echo step-done\n"

Setup = Callable[..., tuple[GitRepo, str, Path, Config, TestClient]]


def status_of(store: BuildStore, build_id: str) -> BuildStatus | None:
    record = store.get(build_id)
    return record.status if record else None


def finished(store: BuildStore, build_id: str, timeout: float = 120) -> BuildRecord:
    wait_until(
        lambda: (status_of(store, build_id) or BuildStatus.QUEUED).finished,
        timeout,
        f"build {build_id} to finish",
    )
    record = store.get(build_id)
    assert record is not None
    return record


def log_has(store: BuildStore, build_id: str, text: str) -> bool:
    return text in step_output(store.log_lines(build_id))


@pytest.fixture
def setup(
    redis: Redis, redis_url: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> Setup:
    def make(
        rules: str, files: dict[str, str], extra: str = "", builder: str = "classic"
    ) -> tuple[GitRepo, str, Path, Config, TestClient]:
        name = f"hostile-{os.urandom(3).hex()}/web"
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
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def _good_plan(
    client: TestClient, store: BuildStore, queue: BuildQueue, repo: GitRepo, sha: str
) -> dict[str, Any]:
    """A real plan, as intake makes it (its build cancelled at once: no worker runs yet)."""
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, f"plan-{os.urandom(3).hex()}")
    record = store.get(build_id)
    assert record is not None and record.plan is not None
    queue.cancel(build_id, "only its plan is wanted")
    return dict(record.plan)


def _spoil_ref(redis: Redis, queue: BuildQueue, plan: dict[str, Any]) -> str:
    [build_id] = queue.submit([BuildPlan.from_dict({**plan, "ref": "refs/heads/a\x00b"})])
    return build_id


def _spoil_plan(redis: Redis, queue: BuildQueue, plan: dict[str, Any]) -> str:
    [build_id] = queue.submit([BuildPlan.from_dict(plan)])
    # A plan that is no plan: every reader of it raises (KeyError, TypeError).
    redis.hset(f"hookbuild:build:{build_id}", "plan", '{"ref": 7}')
    return build_id


def _spoil_record(redis: Redis, queue: BuildQueue, plan: dict[str, Any]) -> str:
    [build_id] = queue.submit([BuildPlan.from_dict(plan)])
    # A record field that is not even JSON: reading the record raises.
    redis.hset(f"hookbuild:build:{build_id}", "pusher", "{not json")
    return build_id


@pytest.mark.docker
@pytest.mark.parametrize("spoil", [_spoil_ref, _spoil_plan, _spoil_record])
def test_a_worker_survives_a_bad_job_and_builds_the_next_push(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    workers: list[WorkerProcess],
    spoil: Callable[[Redis, BuildQueue, dict[str, Any]], str],
) -> None:
    """#8: a job whose plan or record raises anywhere fails with a reason, frees its
    repository's slot, and the same standalone worker builds the next push."""
    repo, sha, path, config, client = setup(
        "      - {branch: main, tags: [latest]}\n",
        {"Dockerfile": QUICK, "version.txt": "good\n"},
        extra="max_running_per_repository: 1\n",
    )
    store = BuildStore(redis)
    queue = BuildQueue.for_config(redis, config)
    plan = _good_plan(client, store, queue, repo, sha)
    worker = WorkerProcess(path, redis_url, docker_host, "w-bad-job")
    workers.append(worker)
    # A first build: the worker then has the repository's mirror, which it starts
    # fetching into the moment it takes a build (runners/prefetch.py).
    [first] = deliver(client, repo.name, "refs/heads/main", sha, "before-bad")
    assert finished(store, first, 90).status is BuildStatus.SUCCEEDED
    bad = spoil(redis, queue, plan)

    wait_until(
        lambda: redis.hget(f"hookbuild:build:{bad}", "status") not in (b'"queued"', b'"running"'),
        60,
        "the bad build to end",
    )
    if spoil is not _spoil_ref:  # that one's commit is in the mirror: it may well build
        assert redis.hget(f"hookbuild:build:{bad}", "status") == b'"failed"'
        error = redis.hget(f"hookbuild:build:{bad}", "error")
        assert error and b"internal error" in error, error
    assert worker.process.poll() is None, worker.log.read_text()[-3000:]
    assert not redis.sismember(f"hookbuild:slots:{repo.name}", bad)
    [good] = deliver(client, repo.name, "refs/heads/main", sha, "after-bad")
    record = finished(store, good, 90)
    assert record.status is BuildStatus.SUCCEEDED, (record.error, worker.log.read_text()[-3000:])
