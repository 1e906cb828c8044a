"""Hostile input against the workers: bad jobs, huge logs, killed builds, a vanishing engine.

Findings 8 (worker half), 9, 10, 16 and 19 of issue 15. Every test runs real worker
processes (or the real pipeline) against the real Redis, dockerd, registry and git.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.build.docker.buildkit import BuildKitProgress
from builder.build.docker.output import BuildOutput
from builder.config import Config
from builder.plan import BuildPlan
from runners.queue import BuildQueue
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests.buildkit_messages import aux, log, vertex
from tests.builds import finished, log_has, status_of
from tests.configs import load_config
from tests.conftest import GitRepo, MakeRepo
from tests.helpers import step_output
from tests.registry import RegistryReader
from tests.services import wait_until
from tests.workers import WorkerProcess, deliver, write_config
from webhooks.app import create_app

QUICK = "FROM hookbuild-test/busybox\nCOPY version.txt /version.txt\nRUN cat /version.txt\n"
SLOW = "FROM hookbuild-test/busybox\nRUN echo step-started && sleep {seconds} && echo step-done\n"

Setup = Callable[..., tuple[GitRepo, str, Path, Config, TestClient]]


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
    # fetching into the moment it takes a build (runners/worker/prefetch.py).
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


HUGE = 25_000_000
CHUNK = 4096


def _within(seconds: float, started: float, what: str) -> None:
    assert time.monotonic() - started < seconds, f"{what} took over {seconds}s: not linear"


def test_a_25_mb_line_from_the_classic_builder_is_split_in_linear_time_and_cut() -> None:
    """#9: a 25 MB line with no newline, in the engine's 4 KiB chunks, costs linear time
    and reaches the log cut to 64 KiB, the cut said in the line."""
    lines: list[str] = []
    output = BuildOutput(lines.append, buildkit=False)
    started = time.monotonic()
    for _ in range(HUGE // CHUNK):
        output.read([{"stream": "C" * CHUNK}])
        _within(5, started, "splitting a 25 MB line")
    output.read([{"stream": "\nafter\n"}])

    [huge, after] = lines
    assert huge.startswith("C" * 65536) and "line cut" in huge and len(huge) < 66000
    assert after == "after"


def test_a_25_mb_line_from_buildkit_is_split_in_linear_time_and_cut() -> None:
    """#9: the same line through BuildKit's progress messages."""
    lines: list[str] = []
    progress = BuildKitProgress(lines.append)
    progress.feed(aux(vertex("sha256:a", "[1/1] RUN flood", started=1.0)))
    started = time.monotonic()
    message = aux(log("sha256:a", b"C" * CHUNK))
    for _ in range(HUGE // CHUNK):
        progress.feed(message)
        _within(5, started, "splitting a 25 MB BuildKit line")
    progress.feed(aux(log("sha256:a", b"\n")))

    huge = lines[-1]
    assert huge.startswith("#1 " + "C" * 65536) and "line cut" in huge and len(huge) < 66000


FLOOD = "FROM hookbuild-test/busybox\nRUN head -c 25000000 /dev/zero | tr '\\0' C && echo && echo flood-done\n"


@pytest.mark.docker
def test_a_build_printing_a_25_mb_line_ends_in_its_time_with_the_line_cut(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    """#9: a real build whose step prints 25 MB without a newline succeeds well within its
    timeout; its log holds the line cut, with the cut said."""
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [flood], timeout: 60}\n", {"Dockerfile": FLOOD}
    )
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-flood"))
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "flood")

    record = finished(BuildStore(redis), build_id, 90)

    assert record.status is BuildStatus.SUCCEEDED, record.error
    lines = BuildStore(redis).log_lines(build_id)
    assert "flood-done" in step_output(lines)
    cut = [line for line in lines if line.startswith("CCCC")]
    assert cut and all(len(line) < 66000 for line in cut)
    assert "line cut" in cut[0]


def _horse_of(worker: WorkerProcess) -> int:
    """The worker's work horse: its child that runs the same program (RQ forks it)."""
    pid = worker.process.pid
    mine = Path(f"/proc/{pid}/cmdline").read_bytes()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    [horse] = [int(c) for c in children if Path(f"/proc/{c}/cmdline").read_bytes() == mine]
    return horse


@pytest.mark.docker
def test_the_timeout_holds_and_the_reaper_waits_while_the_horse_does_not_answer(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    """#9: a work horse that answers nothing (stopped: no thread of it runs) is not taken
    for lost while its worker lives, and is ended at its timeout, failed as timed out."""
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [stuck], timeout: 25}\n",
        {"Dockerfile": SLOW.format(seconds=300)},
    )
    worker = WorkerProcess(path, redis_url, docker_host, "w-stuck")
    workers.append(worker)
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "stuck")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    record = store.get(build_id)
    assert record is not None and record.started_at is not None

    os.kill(_horse_of(worker), signal.SIGSTOP)
    # Past the heartbeat's TTL and a reaper's round: the reaper would have failed it.
    time.sleep(max(0.0, record.started_at + 22 - time.time()))
    assert status_of(store, build_id) is BuildStatus.RUNNING, store.get(build_id)

    ended = finished(store, build_id, 30)
    assert ended.status is BuildStatus.FAILED and ended.error == "timed out after 25s"
    assert ended.finished_at is not None and ended.finished_at - record.started_at < 40
    # #16 too: a build ended by its timeout leaves no directories.
    wait_until(lambda: leftovers(path.parent / "state") == [], 20, "the build's directories to go")
    # The worker goes on: the next push builds.
    quick = repo.commit({"Dockerfile": QUICK, "version.txt": "next\n"})
    repo.push("main")
    [after] = deliver(client, repo.name, "refs/heads/main", quick, "after-stuck")
    assert finished(store, after, 90).status is BuildStatus.SUCCEEDED


def leftovers(state: Path) -> list[str]:
    """What builds left in the worker's work directory."""
    work = state / "work"
    return sorted(p.name for p in work.iterdir()) if work.is_dir() else []


@pytest.mark.docker
def test_a_cancelled_build_leaves_no_directories(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """#16: cancelling a running build removes its checkout, scratch and context at once."""
    repo, sha, path, config, client = setup(
        "      - {branch: main, tags: [slow]}\n", {"Dockerfile": SLOW.format(seconds=120)}
    )
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-cancel-dirs"))
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "cancel-dirs")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    assert leftovers(tmp_path / "state"), "a running build has its directories"

    BuildQueue.for_config(redis, config).cancel(build_id, "cancelled by the test")

    wait_until(lambda: leftovers(tmp_path / "state") == [], 20, "the build's directories to go")


@pytest.mark.docker
def test_a_worker_killed_mid_build_leaves_no_directories_after_the_next_start(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """#16: `kill -9` of a worker mid-build: the next worker to start removes what that
    build left (and what a build of an older version left), not a live build's."""
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [slow]}\n", {"Dockerfile": SLOW.format(seconds=120)}
    )
    killed = WorkerProcess(path, redis_url, docker_host, "w-killed")
    workers.append(killed)
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "killed-dirs")
    store = BuildStore(redis)
    wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step to start")
    assert leftovers(tmp_path / "state")
    old = tmp_path / "state" / "work" / "build-abc123"  # an older version's, a day old
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))

    killed.signal(signal.SIGKILL)
    killed.stop()
    assert leftovers(tmp_path / "state"), "a killed worker cannot clean up"
    redis.delete(f"hookbuild:build:{build_id}:alive")  # its heartbeat expired
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-next"))

    wait_until(lambda: leftovers(tmp_path / "state") == [], 30, "the stale directories to go")


CHATTY = "FROM hookbuild-test/busybox\nRUN seq 1 100000 && echo chatty-done\n"


@pytest.mark.docker
def test_a_chatty_build_s_log_is_cut_at_its_limit_and_the_build_goes_on(
    setup: Setup, redis: Redis, redis_url: str, docker_host: str, workers: list[WorkerProcess]
) -> None:
    """#10: a build's log stops growing at logs.max_bytes: the log says where it was cut,
    the build goes on and succeeds, its last line still says so, the record says so."""
    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [chatty]}\n",
        {"Dockerfile": CHATTY},
        extra="logs: {max_bytes: 65536, max_line_bytes: 1024}\n",
    )
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-chatty"))
    [build_id] = deliver(client, repo.name, "refs/heads/main", sha, "chatty")
    store = BuildStore(redis)

    record = finished(store, build_id, 90)

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert record.log_cut is True
    lines = store.log_lines(build_id)
    assert sum(len(line) + 1 for line in lines) < 65536 + 2048
    cut = [i for i, line in enumerate(lines) if line.startswith("==> the log is cut here")]
    assert len(cut) == 1 and "logs.max_bytes" in lines[cut[0]]
    assert "100000" not in lines and lines[-1].startswith("==> succeeded")
    assert client.get(f"/api/builds/{build_id}").json()["log_cut"] is True


def _big_log(redis: Redis, lines: int, width: int) -> str:
    """A build whose log is `lines` lines of `width` characters, written straight to Redis."""
    store = BuildStore(redis)
    record = BuildRecord(
        id="bigbuild0000000001",
        forge="github",
        repository="acme/web",
        ref="refs/heads/main",
        sha="a" * 40,
        image="127.0.0.1:5000/acme/web",
        tags=("latest",),
        status=BuildStatus.SUCCEEDED,
    )
    store.add(record)
    for start in range(0, lines, 1000):
        store.append_log(
            record.id,
            [f"line {i} ".ljust(width, "x") for i in range(start, min(lines, start + 1000))],
        )
    return record.id


def test_reading_a_big_log_streams_it_in_pages(redis: Redis, tmp_path: Path) -> None:
    """#10: `GET /api/builds/{id}/log` of a 60 MB log sends every line, without the server
    ever holding the log whole (its memory peak stays a fraction of the log's size)."""
    import http.client
    import tracemalloc

    from tests.configs import parse_config
    from tests.services import live_server

    build_id = _big_log(redis, 6000, 10_000)
    config = parse_config(f"state_dir: {tmp_path}\n", {})
    with live_server(create_app(config, redis)) as url:
        host, port = url.removeprefix("http://").split(":")
        tracemalloc.start()
        try:
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.request("GET", f"/api/builds/{build_id}/log")
            response = connection.getresponse()
            assert response.status == 200
            received = newlines = 0
            while chunk := response.read(65536):
                received += len(chunk)
                newlines += chunk.count(b"\n")
            connection.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert newlines == 6000 and received == 6000 * 10_001
    assert peak < 30_000_000, f"the server held {peak / 1e6:.0f} MB for a 60 MB log"


def test_the_build_page_shows_the_log_s_tail_with_a_way_to_the_rest(
    redis: Redis, tmp_path: Path
) -> None:
    """#10: the dashboard's page of a build with a long log holds its last lines only, and
    links to the whole log (and says from which line it starts)."""
    from tests.configs import parse_config

    build_id = _big_log(redis, 20_000, 20)
    config = parse_config(f"state_dir: {tmp_path}\n", {})
    page = TestClient(create_app(config, redis)).get(f"/builds/{build_id}")

    assert page.status_code == 200
    assert "line 19999 " in page.text and "<div>line 0 " not in page.text
    assert page.text.count("<div>line ") == 2000
    assert f'href="/api/builds/{build_id}/log"' in page.text
    assert 'data-first="18000"' in page.text


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_an_engine_stopped_mid_build_fails_it_as_the_engine_not_the_step(
    setup: Setup,
    redis: Redis,
    redis_url: str,
    service_root: Path,
    workers: list[WorkerProcess],
    builder: str,
) -> None:
    """#19: dockerd stopped during a RUN: the build fails with "the Docker engine is not
    reachable", said in its log, not with the step's exit code 137."""
    from tests import services

    repo, sha, path, _config, client = setup(
        "      - {branch: main, tags: [gone]}\n",
        {"Dockerfile": SLOW.format(seconds=120)},
        builder=builder,
    )
    with services.short_dir("dockerd-gone") as directory:
        engine, host = services.start_dockerd(directory)
        try:
            services.import_busybox(host, service_root / f"busybox-gone-{builder}")
            workers.append(WorkerProcess(path, redis_url, host, f"w-gone-{builder}"))
            [build_id] = deliver(client, repo.name, "refs/heads/main", sha, f"gone-{builder}")
            store = BuildStore(redis)
            wait_until(lambda: log_has(store, build_id, "step-started"), 60, "the RUN step")

            engine.stop(timeout=60)
            record = finished(store, build_id, 90)
        finally:
            engine.stop(timeout=60)

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and "the Docker engine is not reachable" in record.error
    assert "137" not in record.error
    assert any("the Docker engine is not reachable" in line for line in store.log_lines(build_id))


def test_hookbuild_logs_still_prints_a_long_log_whole(redis: Redis, tmp_path: Path) -> None:
    """#10 (a guard, not a finding: it passed before too): `hookbuild logs` reads the
    paged stream to its end, every line once and in order."""
    from click.testing import CliRunner

    from runners.cli import main
    from tests.configs import parse_config
    from tests.services import live_server

    build_id = _big_log(redis, 2500, 100)
    config_file = tmp_path / "builds.yml"
    config_file.write_text(f"state_dir: {tmp_path}\n")
    app = create_app(parse_config(config_file.read_text(), {}), redis)
    with live_server(app) as url:
        result = CliRunner().invoke(
            main, ["logs", build_id, "--config", str(config_file), "--server", url]
        )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == BuildStore(redis).log_lines(build_id)
