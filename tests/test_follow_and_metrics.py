"""Following a build's log live (Server-Sent Events), badges, metrics and health."""

from __future__ import annotations

import io
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from runners import servicelog
from runners.cli.logstream import LogClient
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests import configs
from tests.configs import load_config
from tests.conftest import MakeRepo
from tests.helpers import step_output
from tests.registry import RegistryReader
from tests.services import docker_env, free_port, live_server, wait_until
from tests.workers import WorkerProcess, deliver, write_config
from webhooks.app import create_app
from webhooks.follow import END_TEXT_CHARS

# Each test's build is new to the engine (the marker): a cached step would print nothing.
CHATTY = (
    "FROM hookbuild-test/busybox\n"
    "RUN echo {marker} && for i in $(seq 1 30); do echo line-$i; sleep 0.1; done\n"
)


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


@dataclass
class Following:
    client: TestClient
    build_id: str
    repository: str
    worker: WorkerProcess
    server_log: str  # the receiver's own log lines, as JSON, for the delivery


@pytest.fixture
def running(
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> Iterator[Following]:
    repo = make_repo("follow/web")
    sha = repo.commit({"Dockerfile": CHATTY.format(marker=secrets.token_hex(8))})
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
    # JSON service logs, checked by test_service_logs_are_json_lines_naming_the_build.
    worker = WorkerProcess(
        path, redis_url, docker_host, "w-follow", {"HOOKBUILD_LOG_FORMAT": "json"}
    )
    server_log = io.StringIO()
    servicelog.configure("json", stream=server_log)
    try:
        [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "f1")
    finally:
        servicelog.configure("text")
    try:
        yield Following(client, build_id, repo.name, worker, server_log.getvalue())
    finally:
        worker.stop()


@pytest.mark.docker
def test_follow_started_mid_build_gets_every_line_once_in_order_and_ends(
    redis: Redis, running: Following
) -> None:
    client, build_id = running.client, running.build_id
    store = BuildStore(redis)
    wait_until(
        lambda: "line-5" in step_output(store.log_lines(build_id)), 60, "the build to be under way"
    )
    assert "line-30" not in step_output(store.log_lines(build_id)), "the follow starts mid-build"

    got = events(client, f"/api/builds/{build_id}/log?follow=true")

    lines = [e for e in got if e[0] == "message"]
    assert [int(i) for _, i, _ in lines] == list(range(len(lines))), (
        "ids are the line numbers, none missing or twice"
    )
    assert [data for _, _, data in lines] == store.log_lines(build_id), "every line, in order"
    output = step_output([d for _, _, d in lines])
    assert [f"line-{i}" for i in range(1, 31)] == [d for d in output if d.startswith("line-")]
    record = store.get(build_id)
    assert record is not None and record.digests
    # The end carries the final record, for a page that follows the log (#16.11).
    assert got[-1][0] == "end" and json.loads(got[-1][2]) == {
        "status": "succeeded",
        "lines": len(lines),
        "duration": record.duration,
        "worker": record.worker,
        "tags": list(record.tags),
        "digests": dict(record.digests),
        "error": None,
    }


@pytest.mark.docker
def test_a_reconnect_with_last_event_id_resumes_after_it(redis: Redis, running: Following) -> None:
    client, build_id = running.client, running.build_id
    store = BuildStore(redis)
    wait_until(lambda: store.get(build_id).status.finished, 120, "the build")  # type: ignore[union-attr]

    got = events(client, f"/api/builds/{build_id}/log?follow=true", {"Last-Event-ID": "10"})

    lines = [e for e in got if e[0] == "message"]
    assert lines[0][1] == "11" and [d for _, _, d in lines] == store.log_lines(build_id)[11:]


@pytest.mark.docker
def test_badge_and_metrics_tell_what_happened(redis: Redis, running: Following) -> None:
    client, build_id, repository = running.client, running.build_id, running.repository
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


@pytest.mark.docker
def test_the_cli_client_follows_mid_build_and_through_a_server_restart(
    redis: Redis, running: Following
) -> None:
    client, build_id = running.client, running.build_id
    store = BuildStore(redis)
    wait_until(
        lambda: "line-3" in step_output(store.log_lines(build_id)), 60, "the build to be under way"
    )
    port = free_port()
    printed: list[str] = []
    statuses: list[str] = []
    ended: list[str] = []
    follower = LogClient(f"http://127.0.0.1:{port}")

    def follow() -> None:
        ended.append(follower.follow(build_id, printed.append, statuses.append))

    thread = threading.Thread(target=follow)
    with live_server(client.app, port):
        thread.start()
        wait_until(lambda: "line-8" in step_output(printed), 60, "lines through the first server")
    assert "line-30" not in step_output(printed), "the first server went away mid-build"
    with live_server(client.app, port):
        thread.join(120)

    assert ended == ["succeeded"]
    assert printed == store.log_lines(build_id), "every line once, in order, across the restart"
    assert statuses[0] == "running"


@pytest.mark.docker
def test_service_logs_are_json_lines_naming_the_build(
    redis: Redis, running: Following, tmp_path: Path
) -> None:
    build_id = running.build_id
    wait_until(lambda: f"Job OK ({build_id})" in running.worker.log.read_text(), 120, "the build")

    worker_lines = [json.loads(line) for line in running.worker.log.read_text().splitlines()]
    about = [e for e in worker_lines if build_id in json.dumps({**e, "build_id": None})]
    events = {e["event"] for e in worker_lines if e.get("build_id") == build_id}

    assert {"build started", "build succeeded"} <= events
    assert about, "RQ's own lines mention the build"
    assert all(e.get("build_id") == build_id for e in about), "each line about it names it"
    assert all({"timestamp", "level", "logger"} <= e.keys() for e in worker_lines)

    # The server's side: the delivery and the build it queued.
    server_lines = [json.loads(line) for line in running.server_log.splitlines()]
    server_lines = [e for e in server_lines if e["logger"] != "httpx2"]  # the test's client
    assert [e["event"] for e in server_lines] == ["delivery"]
    assert server_lines[0]["builds"] == [build_id] and server_lines[0]["repository"]
    assert server_lines[0]["outcome"] == "built" and server_lines[0]["status"] == 202


def test_a_chatty_build_log_is_written_in_batches_yet_no_line_waits(redis: Redis) -> None:
    """20,000 lines in a burst go in a few dozen RPUSHes, in order; a lone line before a
    silence is written without a further line to push it out."""
    from runners.worker.buildlog import MAX_BATCH, BuildLogWriter

    def rpushes() -> int:
        stats = redis.info("commandstats").get("cmdstat_rpush", {})
        return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0

    store = BuildStore(redis)
    writer = BuildLogWriter(store, "chatty")
    before = rpushes()
    for i in range(20_000):
        writer(f"line {i}")
    writer("the last line before a long silent step")
    wait_until(
        lambda: store.log_lines("chatty", 20_000) == ["the last line before a long silent step"],
        5,
        "the lone line, written by the flush thread",
    )
    calls = rpushes() - before
    writer.close()

    assert store.log_lines("chatty")[:20_000] == [f"line {i}" for i in range(20_000)]
    # At most MAX_BATCH a call, and on average at least 100 (one a line would be 20,001).
    assert 20_000 // MAX_BATCH <= calls <= 20_000 // 100, calls


def test_the_end_event_carries_the_record_bounded(redis: Redis, tmp_path: Path) -> None:
    """#16.11: a failed build's `end` event carries its error for the page to show, cut to
    END_TEXT_CHARS however long the build's output made it, as one line of JSON."""
    store = BuildStore(redis)
    store.add(
        BuildRecord(
            id="endbound",
            forge="github",
            repository="acme/web",
            ref="refs/heads/main",
            sha="f" * 40,
            image="r/web",
            tags=("main",),
        )
    )
    store.start("endbound", "worker-e")
    store.append_log("endbound", ["one line"])
    store.finish("endbound", BuildStatus.FAILED, error="build failed: " + "x\u2028<b>" * 5000)
    config = configs.config_file(
        tmp_path / "builds.yml",
        tmp_path,
        [configs.repository("acme/web", "r/web", secret="s", rules=[{"branch": "main"}])],
    )
    client = TestClient(create_app(load_config(config, {}), redis, docker_environ={}))
    got = events(client, "/api/builds/endbound/log?follow=true")
    assert got[-1][0] == "end"
    end = json.loads(got[-1][2])
    assert end["status"] == "failed" and end["worker"] == "worker-e" and end["digests"] == {}
    assert end["error"].startswith("build failed: x\u2028<b>x")
    assert len(end["error"]) <= END_TEXT_CHARS + 40 and end["error"].endswith("more characters]")
