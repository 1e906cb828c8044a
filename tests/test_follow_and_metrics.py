"""Following a build's log live (Server-Sent Events), badges, metrics and health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import load_config
from runners.records import BuildStatus, BuildStore
from tests.conftest import MakeRepo, fixture_bytes
from tests.registry import RegistryReader
from tests.services import docker_env, free_port, wait_until
from tests.signing import forge_headers
from tests.workers import SECRET, WorkerProcess, write_config
from webhooks.app import create_app

CHATTY = "FROM hookbuild-test/busybox\nRUN for i in $(seq 1 30); do echo line-$i; sleep 0.1; done\n"


def events(
    client: TestClient, url: str, headers: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(event, id, data) for each event of a text/event-stream, to its end."""
    found: list[tuple[str, str, str]] = []
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event, event_id, data = "message", "", ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and (data or event != "message"):
                found.append((event, event_id, data))
                event, event_id, data = "message", "", ""
    return found


@pytest.fixture
def running(
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> Iterator[tuple[TestClient, str, str]]:
    repo = make_repo("follow/web")
    sha = repo.commit({"Dockerfile": CHATTY})
    repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: main, tags: [x]}\n")],
    )
    client = TestClient(
        create_app(load_config(path, {}), redis, docker_environ=docker_env(docker_host))
    )
    worker = WorkerProcess(path, redis_url, docker_host, "w-follow")
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    payload.update(ref="refs/heads/main", after=sha, before="0" * 40)
    payload["repository"].update(full_name=repo.name, default_branch="main")
    body = json.dumps(payload).encode()
    response = client.post(
        "/hooks/github", content=body, headers=forge_headers("github", "push", body, SECRET, "f1")
    )
    [build_id] = response.json()["builds"]
    try:
        yield client, build_id, repo.name
    finally:
        worker.stop()


@pytest.mark.docker
def test_follow_started_mid_build_gets_every_line_once_in_order_and_ends(
    redis: Redis, running: tuple[TestClient, str, str]
) -> None:
    client, build_id, _ = running
    store = BuildStore(redis)
    wait_until(lambda: "line-5" in store.log_lines(build_id), 60, "the build to be under way")
    assert "line-30" not in store.log_lines(build_id), "the follow starts mid-build"

    got = events(client, f"/api/builds/{build_id}/log?follow=true")

    lines = [e for e in got if e[0] == "message"]
    assert [int(i) for _, i, _ in lines] == list(range(len(lines))), (
        "ids are the line numbers, none missing or twice"
    )
    assert [data for _, _, data in lines] == store.log_lines(build_id), "every line, in order"
    assert [f"line-{i}" for i in range(1, 31)] == [d for _, _, d in lines if d.startswith("line-")]
    assert got[-1][0] == "end" and json.loads(got[-1][2]) == {
        "status": "succeeded",
        "lines": len(lines),
    }


@pytest.mark.docker
def test_a_reconnect_with_last_event_id_resumes_after_it(
    redis: Redis, running: tuple[TestClient, str, str]
) -> None:
    client, build_id, _ = running
    store = BuildStore(redis)
    wait_until(lambda: store.get(build_id).status.finished, 120, "the build")  # type: ignore[union-attr]

    got = events(client, f"/api/builds/{build_id}/log?follow=true", {"Last-Event-ID": "10"})

    lines = [e for e in got if e[0] == "message"]
    assert lines[0][1] == "11" and [d for _, _, d in lines] == store.log_lines(build_id)[11:]


@pytest.mark.docker
def test_badge_and_metrics_tell_what_happened(
    redis: Redis, running: tuple[TestClient, str, str]
) -> None:
    client, build_id, repository = running
    store = BuildStore(redis)
    wait_until(lambda: store.get(build_id).status is BuildStatus.SUCCEEDED, 120, "the build")  # type: ignore[union-attr]

    badge = client.get(f"/badge/{repository}/main.svg")
    unknown = client.get(f"/badge/{repository}/nope.svg")
    metrics = client.get("/metrics").text

    assert badge.status_code == 200 and badge.headers["content-type"] == "image/svg+xml"
    assert "no-cache" in badge.headers["cache-control"]
    assert "build: succeeded" in badge.text and "#2ea043" in badge.text
    assert "build: unknown" in unknown.text
    assert f'hookbuild_builds_total{{repository="{repository}",status="succeeded"}} 1.0' in metrics
    assert 'hookbuild_deliveries_total{forge="github",outcome="built"} 1.0' in metrics
    assert "hookbuild_build_duration_seconds_count 1.0" in metrics
    assert "hookbuild_queue_wait_seconds_count 1.0" in metrics
    assert "hookbuild_running_builds 0.0" in metrics


def test_healthz_checks_redis_and_the_engine(
    redis: Redis, docker_host: str, tmp_path: Path
) -> None:
    path = write_config(tmp_path / "builds.yml", tmp_path / "state", "127.0.0.1:1", [])
    config = load_config(path, {})
    healthy = TestClient(create_app(config, redis, docker_environ=docker_env(docker_host))).get(
        "/healthz"
    )
    no_engine = TestClient(
        create_app(config, redis, docker_environ={"DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}"})
    ).get("/healthz")

    assert (
        healthy.status_code == 200
        and healthy.json()["redis"]["ok"]
        and healthy.json()["docker"]["ok"]
    )
    assert no_engine.status_code == 503 and no_engine.json()["docker"]["ok"] is False
    assert "not reachable" in no_engine.json()["docker"]["error"]
