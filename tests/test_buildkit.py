"""BuildKit builds (`builder: auto` and `buildkit`), with real dockerd, registry and git."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import docker
import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.logpatterns import BUILDKIT_CLIPPED, BUILDKIT_STEP
from builder.stepcount import CLIPPED_NOTE
from runners.records import BuildStatus, BuildStore
from tests.builds import finished, push_and_build
from tests.configs import load_config
from tests.conftest import MakeRepo
from tests.helpers import make_config, step_output
from tests.registry import RegistryReader
from tests.services import publish_elsewhere, wait_until
from tests.workers import TOKEN, WorkerProcess, deliver, write_config
from webhooks.app import create_app

pytestmark = pytest.mark.docker
BUILDKIT = "    builder: buildkit\n"
LAYERED = """FROM hookbuild-test/busybox
ARG GREETING
RUN echo "$GREETING" > /greeting
COPY version.txt /version.txt
RUN cat /version.txt > /commit.txt
"""


def steps(log: list[str]) -> list[str]:
    return [line.split(" ", 1)[1] for line in log if BUILDKIT_STEP.match(line)]


def step_numbers(log: list[str]) -> dict[str, str]:
    """Each Dockerfile step's place ("[2/4]") -> its number in the log ("#5")."""
    return {line.split(" ")[1]: line.split(" ")[0] for line in log if BUILDKIT_STEP.match(line)}


def test_buildkit_labels_the_image_without_a_step_and_its_log_shows_the_cache_hits(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo("acme/web")
    first = repo.commit({"Dockerfile": LAYERED, "version.txt": "one\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="bk/web", extra_repo=BUILDKIT
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, first, "bk-1")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.tags("bk/web") == sorted(["latest", first[:7]])
    assert registry.read_file("bk/web", "latest", "/greeting") == "hello\n"  # the build arg
    assert registry.read_file("bk/web", "latest", "/commit.txt") == "one\n"
    labels = registry.config("bk/web", "latest")["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == first
    assert labels["dev.hookbuild.repository"] == "acme/web"
    assert "==> building Dockerfile in context . with BuildKit" in log
    assert not any(line.startswith("Step ") for line in log), log
    # The Dockerfile's four steps and no label step; each step's end is logged.
    assert [s.split("] ", 1)[1].split(" ")[0] for s in steps(log)] == ["FROM", "RUN", "COPY", "RUN"]
    assert sum(1 for line in log if re.match(r"#\d+ DONE \d+\.\d+s$", line)) >= 4, log

    second = repo.commit({"version.txt": "two\n"})
    repo.push("main")
    record, log = push_and_build(redis, docker_host, config, repo.url, second, "bk-2")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.read_file("bk/web", "latest", "/commit.txt") == "two\n"
    numbers = step_numbers(log)
    assert f"{numbers['[2/4]']} CACHED" in log, log  # the RUN before the changed file
    assert f"{numbers['[3/4]']} CACHED" not in log, log
    [built] = [line for line in log if line.startswith("==> built ")]
    hits = re.search(r"; (\d) of 4 steps from the cache$", built)
    assert hits is not None and int(hits[1]) >= 1, built


def test_a_failing_run_step_fails_the_buildkit_build_with_its_output(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit(
        {"Dockerfile": "FROM hookbuild-test/busybox\nRUN echo about to fail && false\n"}
    )
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="bkfail/web", extra_repo=BUILDKIT
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "bk-f")

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and "exit code: 1" in record.error, record.error
    [step] = [line.split(" ")[0] for line in log if BUILDKIT_STEP.match(line) and "RUN" in line]
    assert f"{step} about to fail" in log, log
    assert any(line.startswith(f"{step} ERROR: ") for line in log), log
    assert registry.tags("bkfail/web") == []


@pytest.mark.parametrize("how", ["timeout", "cancel", "sigkill"])
def test_a_stopped_buildkit_build_is_stopped_on_the_engine(
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    how: str,
) -> None:
    """Timed out, cancelled, or its worker killed: BuildKit's steps are not containers
    `docker ps` lists, so the step's own process must be gone, found by a mark no other
    test's command has. (What each does to the build's record is the same for both
    builders: tests/test_scheduling.py.)"""
    mark = f"bk-{how}-{os.urandom(4).hex()}"
    name = f"bk-{os.urandom(3).hex()}/web"
    repo = make_repo(name)
    dockerfile = f"FROM hookbuild-test/busybox\nRUN echo started && sleep 120 && echo {mark}\n"
    sha = repo.commit({"Dockerfile": dockerfile})
    repo.push("main")
    timeout = ", timeout: 4" if how == "timeout" else ""
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(name, repo.url, f"      - {{branch: main, tags: [t]{timeout}}}\n")],
        builder="buildkit",
    )
    client = TestClient(create_app(load_config(path, {}), redis))
    worker = WorkerProcess(path, redis_url, docker_host, f"w-bk-{how}")
    try:
        [build_id] = deliver(client, name, "refs/heads/main", sha, f"bk-{how}")
        store = BuildStore(redis)
        wait_until(lambda: _running(mark), 60, "the RUN step to start")

        if how == "cancel":
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert client.post(f"/api/builds/{build_id}/cancel", headers=auth).status_code == 200
        elif how == "sigkill":
            worker.signal(signal.SIGKILL)

        wait_until(lambda: not _running(mark), 30, "the step's process to be stopped")
        if how != "sigkill":
            record = finished(store, build_id)
            expected = {"timeout": "timed out after 4s", "cancel": "cancelled through the API"}
            assert record.error == expected[how]
        assert "#1 [internal] load remote build context" in store.log_lines(build_id)
    finally:
        worker.stop()


def _running(mark: str) -> bool:
    found = subprocess.run(["pgrep", "-f", mark], capture_output=True, check=False)
    return found.returncode == 0


def test_a_base_image_that_cannot_be_pulled_fails_the_buildkit_build_clearly(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    missing = f"{registry.host}/base/nowhere:1"
    repo = make_repo()
    sha = repo.commit({"Dockerfile": f"FROM {missing}\nRUN true\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="bk/no-base", extra_repo=BUILDKIT
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "bk-nobase")

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and record.error.startswith(f"pulling {missing}: "), (
        record.error
    )
    assert "no active sessions" not in "\n".join(log)
    assert registry.tags("bk/no-base") == []


def test_buildkit_builds_the_target_stage_with_its_labels_and_skips_later_ones(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """A later stage FROMs an image no engine or registry has: neither hookbuild's pull
    nor BuildKit may reach for it when the target comes before it."""
    dockerfile = (
        "FROM hookbuild-test/busybox AS app\nRUN echo app > /stage\n"
        f"FROM {registry.host}/nowhere/at-all:1 AS later\nRUN echo later > /stage\n"
    )
    repo = make_repo()
    sha = repo.commit({"Dockerfile": dockerfile})
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path="bk/target",
        extra_repo=f"{BUILDKIT}    target: app\n",
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "bk-target")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.read_file("bk/target", "latest", "/stage") == "app\n"
    labels = registry.config("bk/target", "latest")["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert not any("nowhere" in line for line in log if line.startswith("==> pulling")), log


def test_a_buildkit_cache_mount_keeps_its_files_from_one_build_to_the_next(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """`RUN --mount=type=cache`: what the first build leaves in the mount, the second
    finds there, though nothing of it is in the first build's image."""
    target = f"/cache-{os.urandom(3).hex()}"  # this test's own cache mount
    dockerfile = (
        "FROM hookbuild-test/busybox\nCOPY version.txt /version.txt\n"
        f"RUN --mount=type=cache,target={target} "
        f"cat {target}/seen 2>/dev/null > /before; cat /version.txt >> {target}/seen\n"
    )
    repo = make_repo()
    first = repo.commit({"Dockerfile": dockerfile, "version.txt": "one\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="bk/cache-mount", extra_repo=BUILDKIT
    )
    record, _ = push_and_build(redis, docker_host, config, repo.url, first, "bk-cm-1")
    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.read_file("bk/cache-mount", "latest", "/before") == ""

    second = repo.commit({"version.txt": "two\n"})
    repo.push("main")
    record, _ = push_and_build(redis, docker_host, config, repo.url, second, "bk-cm-2")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.read_file("bk/cache-mount", "latest", "/before") == "one\n"


def test_auto_leaves_a_dockerfile_that_names_its_own_frontend_to_the_classic_builder(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """BuildKit would fetch the frontend (from a registry that lacks it, on 127.0.0.1) and
    fail; the classic builder reads the directive as a comment."""
    frontend = f"{registry.host}/frontend/none:1"
    repo = make_repo()
    dockerfile = f"# syntax={frontend}\nFROM hookbuild-test/busybox\nRUN echo classic > /built\n"
    sha = repo.commit({"Dockerfile": dockerfile})
    repo.push("main")
    config = make_config(tmp_path / "state", registry.host, image_path="auto/frontend")

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "auto-fe")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert (
        f"==> builder: classic, since the Dockerfile names its own frontend, {frontend}, which "
        "hookbuild does not run BuildKit with unless `builder: buildkit` says so"
    ) in log
    assert any(line.startswith("Step 1/") for line in log), log
    assert registry.read_file("auto/frontend", "latest", "/built") == "classic\n"


def test_buildkit_pulls_the_frontend_a_dockerfile_names_before_it_builds(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """Without a client session BuildKit fetches no frontend itself. hookbuild pulls it
    first, as it does base images. Whether BuildKit can then run one is not tried here: the
    tests' engine has no network for it, and no real frontend image can be had."""
    frontend = f"{registry.host}/frontend/busybox-{os.urandom(3).hex()}"
    publish_elsewhere(docker_host, f"{frontend}:1")
    repo = make_repo()
    sha = repo.commit({"Dockerfile": f"# syntax={frontend}:1\nFROM hookbuild-test/busybox\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="bk/frontend", extra_repo=BUILDKIT
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "bk-fe")

    assert f"==> pulling the frontend image {frontend}:1" in log
    assert docker.APIClient(base_url=docker_host).images(name=frontend), "it is on the engine"
    assert record.status is BuildStatus.FAILED  # busybox is no frontend
    assert registry.tags("bk/frontend") == []


def test_a_secret_mount_fails_with_what_buildkit_lacks_here(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    dockerfile = "FROM hookbuild-test/busybox\nRUN --mount=type=secret,id=token true\n"
    sha = repo.commit({"Dockerfile": dockerfile})
    repo.push("main")
    config = make_config(tmp_path / "state", registry.host, image_path="auto/secret")

    record, _ = push_and_build(redis, docker_host, config, repo.url, sha, "auto-secret")

    assert record.status is BuildStatus.FAILED
    assert record.error == (
        "build failed: no active sessions (hookbuild runs BuildKit without a client session, "
        "which RUN --mount=type=secret and type=ssh need)"
    )


def test_clipped_step_output_is_explained_and_an_engine_started_as_up_does_keeps_it_all(
    redis: Redis,
    docker_host: str,
    second_docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """BuildKit keeps at most 200 KiB a second of a step's output on its defaults: 60,000
    lines at once (~330 KB) overflow that. scripts/up's engine keeps every line."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": "FROM hookbuild-test/busybox\nRUN seq 1 60000\n"})
    repo.push("main")
    logs = {}
    for engine, name in [(docker_host, "defaults"), (second_docker_host, "unclipped")]:
        config = make_config(tmp_path / name, registry.host, image_path=f"auto/chatty-{name}")
        record, logs[name] = push_and_build(redis, engine, config, repo.url, sha, f"chat-{name}")
        assert record.status is BuildStatus.SUCCEEDED, record.error

    clipped = [line for line in logs["defaults"] if BUILDKIT_CLIPPED.match(line)]
    assert clipped, "BuildKit clipped the output on its defaults"
    assert logs["defaults"][logs["defaults"].index(clipped[0]) + 1] == CLIPPED_NOTE
    assert "60000" not in step_output(logs["defaults"])
    output = step_output(logs["unclipped"])
    assert [line for line in output if line.isdigit()] == [str(n) for n in range(1, 60001)]
    assert CLIPPED_NOTE not in logs["unclipped"]
