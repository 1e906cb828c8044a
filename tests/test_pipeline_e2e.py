"""A signed GitHub push becomes tagged images in a real registry (real dockerd, Redis, git)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config
from runners.queue import QUEUE_NAME
from runners.records import BuildRecord, BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests.conftest import REGISTRY_USER, MakeRepo, git
from tests.helpers import DOCKERFILE, make_config, post_github_push, step_output
from tests.registry import RegistryReader
from tests.services import docker_env, free_port, publish_elsewhere
from webhooks.app import create_app

pytestmark = pytest.mark.docker


def work(config: Config, redis: Redis, docker_host: str) -> None:
    run_worker(
        config, redis, docker_env(docker_host), burst=True, in_process=True, name="test-worker"
    )


def push_and_build(
    redis: Redis, docker_host: str, config: Config, clone_url: str, sha: str, delivery: str
) -> tuple[BuildRecord, list[str]]:
    """A signed push of `sha` to main, a worker until the queue is empty: the build's
    record and its log."""
    client = TestClient(create_app(config, redis))
    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, clone_url, delivery=delivery
    )
    assert status == 202, answer
    work(config, redis, docker_host)
    store = BuildStore(redis)
    record = store.get(answer["builds"][0])
    assert record is not None
    return record, store.log_lines(record.id)


def test_signed_push_builds_exact_commit_and_pushes_every_tag(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo("acme/web")
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "commit-one\n"})
    repo.push("main")
    config = make_config(tmp_path / "state", registry.host, image_path="e2e/web")
    client = TestClient(create_app(config, redis))

    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, repo.url, delivery="d-1"
    )
    assert status == 202, answer
    [build_id] = answer["builds"]
    # A newer commit lands before the worker starts: the build must still use the pushed one.
    repo.commit({"version.txt": "commit-two\n"})
    repo.push("main")

    work(config, redis, docker_host)

    record = BuildStore(redis).get(build_id)
    assert record is not None
    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert registry.tags("e2e/web") == sorted(["latest", sha[:7]])
    assert (
        record.digest == registry.digest("e2e/web", "latest") == registry.digest("e2e/web", sha[:7])
    )
    assert registry.read_file("e2e/web", "latest", "/greeting") == "hello\n"
    assert registry.read_file("e2e/web", sha[:7], "/commit.txt") == "commit-one\n"
    labels = registry.config("e2e/web", "latest")["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    committed = git(repo.work, "show", "-s", "--format=%ct", sha)
    created = datetime.fromtimestamp(int(committed), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert labels["org.opencontainers.image.created"] == created
    log = BuildStore(redis).log_lines(build_id)
    # `builder: auto` chose BuildKit, which has no step for the labels: three steps.
    assert "==> building Dockerfile in context . with BuildKit" in log, log
    assert any(re.match(r"#\d+ \[1/3\] FROM docker.io/hookbuild-test/busybox$", x) for x in log)
    assert any(re.match(r"#\d+ \[3/3\] RUN echo", line) for line in log), log
    assert f"==> pushed {registry.host}/e2e/web:latest {record.digest}" in log

    api = client.get(f"/api/builds/{build_id}").json()
    assert api["status"] == "succeeded" and api["digest"] == record.digest
    assert api["tags"] == ["latest", sha[:7]]
    assert [b["id"] for b in client.get("/api/builds").json()["builds"]] == [build_id]


def test_tags_after_the_first_push_are_put_in_the_registry_by_hookbuild(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """The first tag's push uploads the layers; the other three are its manifest put
    under each of them, in the rule's order."""
    repo = make_repo("acme/web")
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "many tags\n"})
    repo.push("main")
    tags = ["latest", sha[:7], "main", "edge"]
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path="e2e/many",
        rules='      - branch: main\n        tags: [latest, "{short_sha}", "{branch}", edge]\n',
    )
    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "d-many")

    assert record.status is BuildStatus.SUCCEEDED, record
    assert registry.tags("e2e/many") == sorted(tags)
    assert {registry.digest("e2e/many", tag) for tag in tags} == {record.digest}
    image = f"{registry.host}/e2e/many"
    starts = [log.index(f"==> pushing {image}:{tag}") for tag in tags]
    ends = [log.index(f"==> pushed {image}:{tag} {record.digest}") for tag in tags]
    assert starts == sorted(starts) and ends == sorted(ends), log
    for start, end, next_start in zip(starts, ends, [*starts[1:], len(log)], strict=True):
        assert start < end < next_start, log  # no push's lines inside another's
    for tag in tags[1:]:  # the layers were there: each put by hookbuild in the registry
        assert f"{tag}: manifest {record.digest} put under this tag; its layers are there" in log


def test_the_worker_starts_fetching_as_it_takes_a_build(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """Once a repository has its mirror, the worker starts the fetch before the job is
    set up; the pipeline finds the commit there and builds exactly it."""
    repo = make_repo("acme/web")
    config = make_config(tmp_path / "state", registry.host, image_path="e2e/prefetch")
    logs = []
    for text in ("first\n", "second\n"):
        sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": text})
        repo.push("main")
        _, log = push_and_build(redis, docker_host, config, repo.url, sha, f"d-{sha}")
        logs.append(log)

    first_log, second_log = logs
    began = "==> the worker began fetching this commit as it took the build"
    assert began not in first_log  # no mirror yet: the first clone is the build's own
    assert began in second_log
    assert f"commit {sha[:12]} is already in the cached mirror: nothing to fetch" in second_log
    assert registry.read_file("e2e/prefetch", sha[:7], "/commit.txt") == "second\n"


def test_same_delivery_twice_builds_once(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "x\n"})
    repo.push("main")
    config = make_config(tmp_path / "state", registry.host, image_path="dedup/web")
    client = TestClient(create_app(config, redis))

    first = post_github_push(
        client, "acme/web", "refs/heads/main", sha, repo.url, delivery="same-id"
    )
    work(config, redis, docker_host)  # the RQ job is finished and gone from the queue
    second = post_github_push(
        client, "acme/web", "refs/heads/main", sha, repo.url, delivery="same-id"
    )

    assert first[0] == 202
    assert second == (200, {"builds": first[1]["builds"], "duplicate": True})
    assert len(BuildStore(redis).recent()) == 1
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 0


def test_bad_signature_builds_nothing(
    redis: Redis,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "x\n"})
    config = make_config(tmp_path / "state", registry.host)
    client = TestClient(create_app(config, redis))

    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, repo.url, delivery="d-bad", secret="wrong"
    )

    assert status == 401
    assert "X-Hub-Signature-256 does not match" in answer["error"]
    assert BuildStore(redis).recent() == []
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 0


@pytest.mark.parametrize(
    ("builder", "engine_says"),
    [("auto", "exit code: 1"), ("classic", "returned a non-zero code: 1")],
)
def test_failing_run_step_fails_the_build_with_its_output_and_pushes_nothing(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    builder: str,
    engine_says: str,
) -> None:
    repo = make_repo()
    dockerfile = "FROM hookbuild-test/busybox\nRUN echo about to fail && false\n"
    sha = repo.commit({"Dockerfile": dockerfile})
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path=f"fails-{builder}/web",
        extra_repo=f"    builder: {builder}\n",
    )
    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "d-f")

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and engine_says in record.error
    assert "about to fail" in step_output(log)
    assert any(
        line.endswith(f"ERROR: {record.error.removeprefix('build failed: ')}") for line in log
    )
    assert registry.tags(f"fails-{builder}/web") == []


def test_push_to_registry_with_htpasswd_auth(
    redis: Redis,
    docker_host: str,
    auth_registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "auth\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", auth_registry.host, image_path="auth/web", registry_auth=REGISTRY_USER
    )
    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "d-a")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert auth_registry.tags("auth/web") == sorted(["latest", sha[:7]])
    assert auth_registry.digest("auth/web", sha[:7]) == record.digest
    assert REGISTRY_USER[1] not in "\n".join(log)
    # The second tag was put by hookbuild itself, with the registry's Basic auth.
    assert f"{sha[:7]}: manifest {record.digest} put under this tag; its layers are there" in log


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_a_private_base_image_the_engine_lacks_is_pulled_with_the_configs_credentials(
    redis: Redis,
    docker_host: str,
    auth_registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    builder: str,
) -> None:
    """BuildKit pulls nothing itself here, and the classic builder would pull without the
    config's credentials: hookbuild pulls the base, with them."""
    base = f"{auth_registry.host}/base/private-{os.urandom(3).hex()}"
    publish_elsewhere(docker_host, f"{base}:1", REGISTRY_USER)
    password = REGISTRY_USER[1]
    repo = make_repo()
    files = {"Dockerfile": f"ARG BASE={base}\nFROM $BASE:1\nRUN echo built > /built\n"}
    sha = repo.commit(files)
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        auth_registry.host,
        image_path=f"{builder}/private-base",
        registry_auth=REGISTRY_USER,
        extra_repo=f"    builder: {builder}\n",
    )

    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "bk-base")

    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert f"==> pulling the base image {base}:1" in log
    assert auth_registry.read_file(f"{builder}/private-base", "latest", "/built") == "built\n"
    assert password not in "\n".join(log)


def test_tags_after_the_first_fall_back_to_the_engine_when_the_registry_cannot_be_asked(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """The config says https; the registry speaks http (the engine pushes to 127.0.0.1
    over http anyway): the tag hookbuild cannot put itself is pushed by the engine."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "fallback\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state", registry.host, image_path="fallback/web", insecure=False
    )
    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "d-fallback")

    assert record.status is BuildStatus.SUCCEEDED, record
    assert registry.tags("fallback/web") == sorted(["latest", sha[:7]])
    assert registry.digest("fallback/web", sha[:7]) == record.digest
    assert any(
        line.startswith(f"{sha[:7]}: not tagged in the registry (GET manifests/")
        and line.endswith("); pushing through the engine")
        for line in log
    ), log


def test_wrong_registry_password_fails_with_a_clear_error(
    redis: Redis,
    docker_host: str,
    auth_registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "auth\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        auth_registry.host,
        image_path="denied/web",
        registry_auth=(REGISTRY_USER[0], "not-the-password"),
    )
    record, _ = push_and_build(redis, docker_host, config, repo.url, sha, "d-w")

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and "pushing" in record.error
    assert "unauthorized" in record.error.lower() or "authentication" in record.error.lower()
    assert auth_registry.tags("denied/web") == []


def test_registry_down_fails_the_build_and_says_so(
    redis: Redis,
    docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "down\n"})
    repo.push("main")
    nothing_listens = f"127.0.0.1:{free_port()}"
    config = make_config(tmp_path / "state", nothing_listens, image_path="down/web")
    record, log = push_and_build(redis, docker_host, config, repo.url, sha, "d-d")

    assert record.status is BuildStatus.FAILED
    assert record.error is not None and f"pushing {nothing_listens}/down/web:latest" in record.error
    assert "connection refused" in record.error.lower()
    retried = [
        line
        for line in log
        if line.startswith(f"==> pushing {nothing_listens}/down/web:latest failed")
    ]
    assert [line.split("; ")[-1] for line in retried] == [
        "attempt 2 of 3 in 0s",
        "attempt 3 of 3 in 0s",
    ]


def test_labels_take_one_step_and_nothing_of_ours_reaches_the_context(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    dockerfile = "FROM hookbuild-test/busybox\nCOPY . /ctx\n"
    sha = repo.commit({"docker/Dockerfile": dockerfile, "app.txt": "app\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path="labels/web",
        rules="      - {branch: main, tags: [latest], dockerfile: docker/Dockerfile}\n",
        extra_repo="    builder: classic\n",  # BuildKit's labels are no step (test_buildkit.py)
    )
    record, _ = push_and_build(redis, docker_host, config, repo.url, sha, "d-l")

    assert record.status is BuildStatus.SUCCEEDED, record and record.error
    context = sorted(f for f in registry.files("labels/web", "latest") if f.startswith("ctx/"))
    assert context == ["ctx/app.txt", "ctx/docker", "ctx/docker/Dockerfile"]
    labels = registry.config("labels/web", "latest")["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["dev.hookbuild.repository"] == "acme/web"
    steps = [line for line in BuildStore(redis).log_lines(record.id) if line.startswith("Step ")]
    assert len(steps) == 3 and steps[-1].startswith('Step 3/3 : LABEL "dev.hookbuild.repository"=')


@pytest.mark.parametrize(
    ("extra_repo", "labels", "steps"),
    [
        pytest.param("    oci_labels: false\n", None, 2, id="no-label-step"),
        pytest.param(
            "    oci_labels: false\n    labels: {team: web}\n",
            {"team": "web"},
            3,
            id="only-the-configs-labels",
        ),
    ],
)
def test_oci_labels_off_leaves_hookbuilds_labels_and_their_step_out(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    extra_repo: str,
    labels: dict[str, str] | None,
    steps: int,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": "FROM hookbuild-test/busybox\nCOPY . /ctx\n", "a.txt": "a\n"})
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path="bare/web",
        rules="      - {branch: main, tags: [latest]}\n",
        extra_repo=f"{extra_repo}    builder: classic\n",  # whose labels take a step
    )
    record, _ = push_and_build(redis, docker_host, config, repo.url, sha, "d-bare")

    assert record.status is BuildStatus.SUCCEEDED, record and record.error
    assert registry.config("bare/web", "latest")["config"]["Labels"] == labels
    logged = [line for line in BuildStore(redis).log_lines(record.id) if line.startswith("Step ")]
    assert len(logged) == steps, logged


COPY_ALL = "FROM hookbuild-test/busybox\nCOPY . /app/\n"


@pytest.mark.parametrize(
    ("files", "extra_repo", "context_line", "present", "absent"),
    [
        pytest.param(
            {"Dockerfile": COPY_ALL, "hello.txt": "hi\n", "sub/deep.txt": "deep\n"},
            "",
            "==> context from the mirror as a tar",
            {"app/hello.txt", "app/sub/deep.txt", "app/Dockerfile"},
            {"app/.dockerignore"},
            id="streamed-from-git",
        ),
        pytest.param(
            {"app/Dockerfile": COPY_ALL, "app/hello.txt": "hi\n", "other.txt": "no\n"},
            "    dockerfile: app/Dockerfile\n    context: app\n",
            "==> context from the mirror as a tar",
            {"app/hello.txt", "app/Dockerfile"},
            {"app/other.txt", "app/app/hello.txt"},
            id="streamed-subdirectory-context",
        ),
        pytest.param(
            {
                "Dockerfile": COPY_ALL,
                "hello.txt": "hi\n",
                "secret.txt": "s\n",
                ".dockerignore": "secret.txt\n",
            },
            "",
            "==> context from the mirror as a tar, repacked,",
            {"app/hello.txt", "app/.dockerignore"},
            {"app/secret.txt"},
            id="own-dockerignore",
        ),
        pytest.param(
            {"docker/Dockerfile": COPY_ALL, "app/hello.txt": "hi\n"},
            "    dockerfile: docker/Dockerfile\n    context: app\n",
            "==> context from the mirror as a tar, repacked,",
            {"app/hello.txt"},
            {"app/docker/Dockerfile", "app/app/hello.txt"},
            id="dockerfile-outside-the-context",
        ),
    ],
)
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_the_context_is_what_docker_build_would_send(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
    files: dict[str, str],
    extra_repo: str,
    context_line: str,
    present: set[str],
    absent: set[str],
    builder: str,
) -> None:
    """Streamed straight from git where nothing differs, repacked from git's tar where it
    would (a .dockerignore of the repository's own, a Dockerfile outside the context); either
    way, with either builder, the image holds what `docker build` would have put there,
    and the OCI labels."""
    repo = make_repo("acme/web")
    sha = repo.commit(files)
    repo.push("main")
    config = make_config(
        tmp_path / "state",
        registry.host,
        image_path="ctx/web",
        extra_repo=f"{extra_repo}    builder: {builder}\n",
    )
    client = TestClient(create_app(config, redis))
    _, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, repo.url, delivery="ctx-1"
    )
    [build_id] = answer["builds"]

    work(config, redis, docker_host)

    record = BuildStore(redis).get(build_id)
    assert record is not None and record.status is BuildStatus.SUCCEEDED, record
    log = BuildStore(redis).log_lines(build_id)
    assert any(line.startswith(context_line) for line in log), log
    in_image = {f for f in registry.files("ctx/web", "latest") if f.startswith("app/")}
    assert present <= in_image and not (absent & in_image), in_image
    assert not any(".hookbuild-dockerfile" in f for f in in_image)
    labels = registry.config("ctx/web", "latest")["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
