"""Workers on several engines, a cold worker's registry cache, an engine that goes away,
disk budgets, and the retention of finished builds."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from runners.records import BuildStatus, BuildStore
from tests import services
from tests.builds import finished, work
from tests.configs import load_config
from tests.conftest import MakeRepo
from tests.registry import RegistryReader
from tests.services import wait_until
from tests.workers import WorkerProcess, deliver, write_config
from webhooks.app import create_app

CACHEABLE = (
    "FROM hookbuild-test/busybox\nRUN echo expensive > /expensive\n"
    "COPY version.txt /version.txt\nRUN cat /version.txt > /commit.txt\n"
)


def images_on(docker_host: str, repository: str) -> list[str]:
    out = subprocess.run(
        ["docker", "-H", docker_host, "images", "-q", repository],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


@pytest.fixture
def engine_dir() -> Iterator[Path]:
    with services.short_dir("engine") as directory:
        yield directory


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.mark.docker
def test_two_workers_on_two_engines_share_the_queue(
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    second_docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    dockerfile = (
        "FROM hookbuild-test/busybox\nCOPY version.txt /v\nRUN sleep 2 && cat /v > /commit.txt\n"
    )
    repos = []
    for name in ("engines/one", "engines/two"):
        repo = make_repo(name)
        shas = []
        for i in range(2):
            shas.append(repo.commit({"Dockerfile": dockerfile, "version.txt": f"{name}-{i}\n"}))
            repo.tag(f"v{i}")
        repos.append((repo, shas))
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {tag: /^v.*$/, tags: ['{tag}']}\n") for repo, _ in repos],
    )
    client = TestClient(create_app(load_config(path, {}), redis))
    ids = [
        deliver(client, repo.name, f"refs/tags/v{i}", sha, f"{repo.name}-{i}")[0]
        for repo, shas in repos
        for i, sha in enumerate(shas)
    ]
    workers.append(WorkerProcess(path, redis_url, docker_host, "engine-one"))
    workers.append(WorkerProcess(path, redis_url, second_docker_host, "engine-two"))

    store = BuildStore(redis)
    records = [finished(store, build_id) for build_id in ids]

    assert all(r.status is BuildStatus.SUCCEEDED for r in records), [
        (r.id, r.error) for r in records
    ]
    assert {r.worker for r in records} == {"engine-one", "engine-two"}
    for record in records:
        host = docker_host if record.worker == "engine-one" else second_docker_host
        assert images_on(host, f"{registry.host}/{record.repository}"), (
            f"{record.id} was built on {host}"
        )
    for repo, _ in repos:
        assert registry.tags(repo.name) == ["v0", "v1"]


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_a_cold_worker_uses_the_last_pushed_image_as_cache(
    redis: Redis,
    registry: RegistryReader,
    docker_host: str,
    second_docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
    builder: str,
) -> None:
    repo = make_repo(f"cache-{builder}/web")
    first = repo.commit({"Dockerfile": CACHEABLE, "version.txt": "1\n"})
    repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: main, tags: [main]}\n")],
        builder=builder,
    )
    config = load_config(path, {})
    client = TestClient(create_app(config, redis))
    deliver(client, repo.name, "refs/heads/main", first, "c1")
    work(config, redis, docker_host)
    second = repo.commit({"version.txt": "2\n"})
    repo.push("main")

    [build_id] = deliver(client, repo.name, "refs/heads/main", second, "c2")
    work(config, redis, second_docker_host)

    store = BuildStore(redis)
    record = store.get(build_id)
    assert record is not None and record.status is BuildStatus.SUCCEEDED, record and record.error
    log = store.log_lines(build_id)
    image = f"{registry.host}/{repo.name}"
    assert f"==> no local build cache for {image}: using {image}:main from the registry" in log
    if builder == "buildkit":  # its cache metadata went into the image it pushed
        [step] = [
            line.split(" ")[0] for line in log if line.endswith("] RUN echo expensive > /expensive")
        ]
        assert f"{step} CACHED" in log, "the expensive step came from the pulled image"
    else:
        assert " ---> Using cache" in log, "the expensive step came from the pulled image"
    summary = next(line for line in log if line.startswith("==> built sha256:"))
    assert re.search(r" [1-9]\d* of \d+ steps from the cache$", summary), summary
    assert registry.read_file(repo.name, "main", "/commit.txt") == "2\n"


@pytest.mark.docker
def test_an_engine_that_is_down_fails_the_build_clearly_and_the_worker_goes_on(
    engine_dir: Path,
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    engine, host = services.start_dockerd(engine_dir)
    services.import_busybox(host, tmp_path / "busybox")
    repo = make_repo("down/web")
    first = repo.commit({"Dockerfile": CACHEABLE, "version.txt": "1\n"})
    repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: main, tags: ['{short_sha}']}\n")],
    )
    client = TestClient(create_app(load_config(path, {}), redis))
    store = BuildStore(redis)
    worker = WorkerProcess(path, redis_url, host, "w-engine")
    workers.append(worker)
    try:
        engine.stop(timeout=30)
        [failed] = deliver(client, repo.name, "refs/heads/main", first, "e1")
        record = finished(store, failed)
        assert record.status is BuildStatus.FAILED
        assert record.error is not None and "the Docker engine is not reachable" in record.error

        # The same data root again: the base image is still there.
        engine, _ = services.start_dockerd(engine_dir)
        second = repo.commit({"version.txt": "2\n"})
        repo.push("main")
        [built] = deliver(client, repo.name, "refs/heads/main", second, "e2")
        record = finished(store, built)
        assert record.status is BuildStatus.SUCCEEDED, record.error
        assert record.worker == "w-engine" and worker.process.poll() is None
    finally:
        worker.stop()
        engine.stop(timeout=30)


@pytest.mark.docker
@pytest.mark.parametrize("oci_labels", [True, False], ids=["labelled", "oci_labels-off"])
def test_disk_budget_prunes_images_and_mirrors(
    redis: Redis,
    registry: RegistryReader,
    second_docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
    oci_labels: bool,
) -> None:
    """Images are found by hookbuild's label, or by name where `oci_labels: false` left
    them without it."""
    repo = make_repo("prune/web" if oci_labels else "prune/bare")
    sha = repo.commit({"Dockerfile": CACHEABLE, "version.txt": "1\n"})
    repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: main, tags: [main]}\n")],
        extra="disk: {image_budget_mb: 0, mirror_budget_mb: 0, min_age_seconds: 0}\n",
        oci_labels=oci_labels,
    )
    config = load_config(path, {})
    [build_id] = deliver(
        TestClient(create_app(config, redis)), repo.name, "refs/heads/main", sha, "p1"
    )

    work(config, redis, second_docker_host)

    log = BuildStore(redis).log_lines(build_id)
    # This engine may hold other tests' images too: all of hookbuild's go with a budget of 0.
    assert re.match(r"==> pruned [1-9]\d* old image\(s\) and 1 mirror\(s\) over budget", log[-1]), (
        log[-3:]
    )
    assert images_on(second_docker_host, f"{registry.host}/{repo.name}") == []
    assert list((tmp_path / "state" / "mirrors").glob("*.git")) == []
    assert registry.tags(repo.name) == ["latest", "main"], "the pushed image is untouched"
    labels = registry.config(repo.name, "main")["config"].get("Labels") or {}
    assert ("org.opencontainers.image.revision" in labels) is oci_labels


def test_finished_builds_expire_after_the_retention(redis: Redis) -> None:
    from runners.records import BuildRecord as Record

    store = BuildStore(redis, retention_seconds=1)
    old = Record(
        id="old",
        forge="github",
        repository="r",
        ref="refs/heads/main",
        sha="a" * 40,
        image="i",
        tags=("t",),
        created_at=time.time() - 5,
    )
    store.add(old)
    store.append_log("old", ["a line"])
    assert store.finish("old", BuildStatus.SUCCEEDED)
    assert (
        0 < redis.ttl("hookbuild:build:old") <= 1 and 0 < redis.ttl("hookbuild:build:old:log") <= 1
    )
    wait_until(lambda: store.get("old") is None, 5, "the record to expire")
    store.add(
        Record(
            id="new",
            forge="github",
            repository="r",
            ref="refs/heads/main",
            sha="b" * 40,
            image="i",
            tags=("t",),
        )
    )
    assert [r.id for r in store.recent()] == ["new"]
    assert redis.zrange("hookbuild:builds", 0, -1) == [b"new"], (
        "the index no longer lists the expired build"
    )


@pytest.mark.docker
def test_a_finishing_build_does_not_prune_layers_a_concurrent_build_needs(
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    long_repo, short_repo = make_repo("concurrent/long"), make_repo("concurrent/short")
    long_sha = long_repo.commit(
        {
            "Dockerfile": (
                "FROM hookbuild-test/busybox\nRUN echo one > /one\nRUN echo long-started && sleep 4\n"
                "RUN echo three > /three\nRUN cat /one /three > /both\n"
            )
        }
    )
    long_repo.push("main")
    short_sha = short_repo.commit(
        {"Dockerfile": "FROM hookbuild-test/busybox\nRUN echo short > /short\n"}
    )
    short_repo.push("main")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [
            (long_repo.name, long_repo.url, "      - {branch: main, tags: [x]}\n"),
            (short_repo.name, short_repo.url, "      - {branch: main, tags: [x]}\n"),
        ],
        builder="classic",  # whose steps leave dangling images between them
    )
    client = TestClient(create_app(load_config(path, {}), redis))
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-long"))
    workers.append(WorkerProcess(path, redis_url, docker_host, "w-short"))
    store = BuildStore(redis)
    [long_id] = deliver(client, long_repo.name, "refs/heads/main", long_sha, "cl")
    wait_until(lambda: "long-started" in store.log_lines(long_id), 60, "the long build's sleep")
    [short_id] = deliver(client, short_repo.name, "refs/heads/main", short_sha, "cs")

    short, long = finished(store, short_id), finished(store, long_id)

    assert short.status is BuildStatus.SUCCEEDED, short.error
    assert long.status is BuildStatus.SUCCEEDED, long.error
    assert (
        short.finished_at is not None
        and long.finished_at is not None
        and short.finished_at < long.finished_at
    )


@pytest.mark.docker
def test_prune_spares_what_is_younger_than_the_minimum_age(
    second_docker_host: str, tmp_path: Path
) -> None:
    """A concurrent build's latest step is an untagged (dangling) image until its next step
    starts, and BuildKit's steps are records of its build cache: pruning must not take
    them. Young ones survive; old enough ones go."""
    from builder.build.docker.engine import DockerEngine
    from builder.build.engine import BuildRequest

    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM hookbuild-test/busybox\nRUN echo {time.time_ns()} > /n\n"
    )
    built = subprocess.run(
        ["docker", "-H", second_docker_host, "build", "-q", str(context)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    engine = DockerEngine.from_environment({"DOCKER_HOST": second_docker_host})

    def exists() -> bool:
        return (
            subprocess.run(
                ["docker", "-H", second_docker_host, "image", "inspect", built], capture_output=True
            ).returncode
            == 0
        )

    def build_cache() -> int:
        return len(engine.client.df()["BuildCache"] or [])

    try:
        # BuildKit's cache records, which a build running beside the prune may be using.
        (context / "Dockerfile").write_text(
            f"FROM hookbuild-test/busybox\nRUN echo {time.time_ns()} > /n\n"
        )
        engine.build_buildkit(
            BuildRequest(context, "Dockerfile", tag="young:1", build_args={}, labels={}),
            lambda _: None,
        )
        records = build_cache()
        engine.prune("dev.hookbuild.repository", 0, min_age_seconds=3600)
        assert exists(), "a young dangling image is spared"
        assert build_cache() == records > 0, "young build cache is spared"
        engine.prune("dev.hookbuild.repository", 0, min_age_seconds=0)
        assert not exists(), "with no minimum age it is pruned"
        assert build_cache() < records, "with no minimum age the build cache is pruned"
    finally:
        engine.close()


@pytest.mark.docker
def test_auto_takes_buildkit_on_engines_that_have_it_as_hookbuild_drives_it(
    docker_host: str,
) -> None:
    """BuildKit through the API, without a session: Linux engines from API 1.39 on. The
    test engine speaks older versions too, as an engine older than Docker 18.09 would."""
    import docker

    from builder.build.docker.engine import DockerEngine
    from builder.builderchoice import choose_builder

    current = DockerEngine.from_environment({"DOCKER_HOST": docker_host})
    old = DockerEngine(docker.APIClient(base_url=docker_host, version="1.38"))
    try:
        assert current.has_buildkit and not old.has_buildkit
        assert choose_builder("auto", current.has_buildkit, None) == ("buildkit", None)
        assert choose_builder("auto", old.has_buildkit, None) == (
            "classic",
            "the engine has no BuildKit",
        )
        assert choose_builder("buildkit", old.has_buildkit, "x/f:1") == ("buildkit", None)
        assert choose_builder("classic", current.has_buildkit, None) == ("classic", None)
    finally:
        current.close()
        old.close()
