"""The build context: nothing of a repository is read through a symlink on the worker.

The repository is untrusted. Its `.dockerignore`, its Dockerfile and its context directory
come from git objects only: a link is followed inside the commit's tree, or refused with the
reason; a file too big is refused before it is read. Real git, Redis, dockerd, registry.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.utils.build import PatternMatcher
from redis import Redis
from starlette.applications import Starlette
from starlette.testclient import TestClient

from builder.build.docker.context import pack_directory
from builder.build.docker.contextfilter import IgnoreMatcher
from builder.build.source import MirrorCache
from builder.build.streamcontext import stream_context
from builder.errors import BuildFailed, SourceError, UnsafePathError
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests import configs
from tests.configs import load_config
from tests.conftest import GitRepo, MakeRepo
from tests.registry import RegistryReader
from tests.services import docker_env, wait_until
from tests.workers import SECRET, deliver
from webhooks.app import create_app

LEAK = "FROM hookbuild-test/busybox\nCOPY .dockerignore /leak\nRUN cat /leak\n"
# Far above what a worker needs, far below what reading /dev/zero whole takes.
WORKER_MEMORY = 2 * 1024**3


def commit(repo: GitRepo, files: dict[str, str], links: dict[str, str]) -> str:
    """Commit `files` and the symlinks `links` (path -> target), and push to main."""
    for path, target in links.items():
        (repo.work / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo.work / path)
    sha = repo.commit(files)
    repo.push("main")
    return sha


def write_config(path: Path, registry_host: str, repo: GitRepo, builder: str, extra: str) -> Path:
    entry = configs.repository(
        repo.name,
        f"{registry_host}/{repo.name}",
        secret=SECRET,
        clone_url=repo.url,
        builder=builder,
        extra=extra,
        rules=[{"branch": "main", "tags": ["latest"]}],
    )
    return configs.config_file(
        path,
        path.parent / "state",
        [entry],
        retries={"backoff_seconds": 0.1},
        registries=[{"host": registry_host, "insecure": True}],
    )


@pytest.fixture
def worker_env() -> dict[str, str]:
    """The environment a worker process starts with, with a canary that no build may see."""
    return {"HOOKBUILD_CANARY": f"canary-{secrets.token_hex(8)}"}


class Worker:
    """A real `hookbuild worker` process, under a memory limit (util-linux's prlimit)."""

    def __init__(self, config: Path, redis_url: str, docker_host: str, env: dict[str, str]):
        self.log = config.parent / "worker.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    "prlimit",
                    f"--as={WORKER_MEMORY}",
                    sys.executable,
                    "-m",
                    "runners.cli",
                    "worker",
                    "--config",
                    str(config),
                    "--redis-url",
                    redis_url,
                    "--name",
                    f"ctx-{secrets.token_hex(3)}",
                ],
                env={**docker_env(docker_host), "PYTHONPATH": os.getcwd(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def finished(redis: Redis, build_id: str) -> BuildRecord:
    store = BuildStore(redis)

    def done() -> bool:
        record = store.get(build_id)
        return record is not None and record.status.finished

    wait_until(done, 180, f"build {build_id} to finish")
    record = store.get(build_id)
    assert record is not None
    return record


def build_with_worker(
    tmp_path: Path,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    repo: GitRepo,
    shas: list[str],
    builder: str,
    extra: str,
    env: dict[str, str],
) -> tuple[list[BuildRecord], list[str], bool]:
    """Each of `shas` pushed in turn and built by one worker process: the records, each
    build's log as the API gives it, and whether the worker still runs at the end."""
    path = write_config(tmp_path / "builds.yml", registry.host, repo, builder, extra)
    client = TestClient(create_app_for(path, redis))
    worker = Worker(path, redis_url, docker_host, env)
    try:
        records, logs = [], []
        for n, sha in enumerate(shas):
            [build_id] = deliver(client, repo.name, "refs/heads/main", sha, f"ctx-{n}")
            records.append(finished(redis, build_id))
            response = client.get(f"/api/builds/{build_id}/log")
            assert response.status_code == 200
            logs.append(response.text)
        alive = worker.process.poll() is None
    finally:
        worker.stop()
    return records, logs, alive


def create_app_for(path: Path, redis: Redis) -> Starlette:
    return create_app(load_config(path, {}), redis)


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_a_dockerignore_linked_to_the_workers_environ_leaks_nothing(
    tmp_path: Path,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    worker_env: dict[str, str],
    builder: str,
) -> None:
    """#2: `app/.dockerignore -> /proc/self/environ` with `context: app` and a Dockerfile
    that copies and prints it: the build fails with the reason, its log and the registry
    hold nothing of the worker's environment, and the worker builds the next push."""
    repo = make_repo(f"ctx-{secrets.token_hex(3)}/leak")
    bad = commit(
        repo, {"Dockerfile": LEAK, "app/a.txt": "a\n"}, {"app/.dockerignore": "/proc/self/environ"}
    )
    os.unlink(repo.work / "app/.dockerignore")
    good = repo.commit({"app/.dockerignore": "a.txt\n"})
    repo.push("main")

    records, logs, alive = build_with_worker(
        tmp_path,
        redis,
        redis_url,
        docker_host,
        registry,
        repo,
        [bad, good],
        builder,
        "    context: app\n    dockerfile: Dockerfile\n",
        worker_env,
    )

    canary = worker_env["HOOKBUILD_CANARY"]
    assert records[0].status is BuildStatus.FAILED, records[0]
    assert records[0].error is not None
    assert "app/.dockerignore is a symlink that leaves the repository" in records[0].error
    assert "app/.dockerignore is a symlink that leaves the repository" in logs[0]
    assert canary not in logs[0] and canary not in (records[0].error or "")
    # The worker carries on: the next push builds, with its .dockerignore applied.
    assert records[1].status is BuildStatus.SUCCEEDED, records[1].error
    assert alive
    leaked = registry.read_file(repo.name, "latest", "/leak") or ""
    assert leaked.startswith("a.txt\n") and canary not in leaked
    assert canary not in "".join(logs)


@pytest.mark.docker
def test_a_dockerignore_linked_to_dev_zero_fails_at_once_with_bounded_memory(
    tmp_path: Path,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    worker_env: dict[str, str],
) -> None:
    """#5: `.dockerignore -> /dev/zero` in the default context: the build fails with the
    reason, in a worker whose memory is limited to 2 GB, which goes on building."""
    repo = make_repo(f"ctx-{secrets.token_hex(3)}/zero")
    bad = commit(
        repo,
        {"Dockerfile": "FROM hookbuild-test/busybox\nCOPY . /ctx/\n"},
        {".dockerignore": "/dev/zero"},
    )
    os.unlink(repo.work / ".dockerignore")
    good = repo.commit({"ok.txt": "ok\n"})
    repo.push("main")

    records, _, alive = build_with_worker(
        tmp_path,
        redis,
        redis_url,
        docker_host,
        registry,
        repo,
        [bad, good],
        "buildkit",
        "",
        worker_env,
    )

    assert records[0].status is BuildStatus.FAILED, records[0]
    assert ".dockerignore is a symlink that leaves the repository (to '/dev/zero')" in (
        records[0].error or ""
    )
    assert records[1].status is BuildStatus.SUCCEEDED, records[1].error
    assert alive, (tmp_path / "worker.log").read_text()[-2000:]


@pytest.mark.docker
def test_a_dockerfile_linked_inside_the_tree_is_read_through_its_link(
    tmp_path: Path,
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    worker_env: dict[str, str],
) -> None:
    """#2: `Dockerfile -> docker/Dockerfile.prod` is followed inside the commit's tree: its
    target is what builds, and what `builder: auto` reads (its `# syntax=` line sends it
    to the classic builder; the link's own text has none)."""
    repo = make_repo(f"ctx-{secrets.token_hex(3)}/linked")
    # A frontend on 127.0.0.1 that the registry lacks: BuildKit would fail to fetch it.
    frontend = f"{registry.host}/frontend/none:1"
    prod = f"# syntax={frontend}\nFROM hookbuild-test/busybox\nCOPY hello.txt /hello\n"
    sha = commit(
        repo,
        {"docker/Dockerfile.prod": prod, "hello.txt": "hi\n"},
        {"Dockerfile": "docker/Dockerfile.prod"},
    )

    records, logs, _ = build_with_worker(
        tmp_path, redis, redis_url, docker_host, registry, repo, [sha], "auto", "", worker_env
    )

    assert records[0].status is BuildStatus.SUCCEEDED, (records[0].error, logs[0])
    assert "==> builder: classic, since the Dockerfile names its own frontend" in logs[0]
    assert registry.read_file(repo.name, "latest", "/hello") == "hi\n"


@pytest.fixture
def mirror(make_repo: MakeRepo, tmp_path: Path) -> Iterator[tuple[MirrorCache, GitRepo]]:
    yield MirrorCache(tmp_path / "mirrors"), make_repo(f"ctx-{secrets.token_hex(3)}/unit")


def context_of(
    mirror: tuple[MirrorCache, GitRepo],
    tmp_path: Path,
    files: dict[str, str],
    links: dict[str, str],
    context: str = ".",
    dockerfile: str = "Dockerfile",
) -> Path:
    mirrors, repo = mirror
    sha = commit(repo, files, links)
    mirrors.fetch(repo.url, "refs/heads/main", sha)
    scratch = tmp_path / f"scratch-{secrets.token_hex(3)}"
    scratch.mkdir()
    labels = {"a": "b"}
    return stream_context(mirrors, repo.url, sha, context, dockerfile, labels, None, scratch).tar


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/", "context 'app' is a symlink in the repository"),
        ("..", "context 'app' is a symlink in the repository"),
        ("sub", "context 'app' is a symlink in the repository"),
    ],
)
def test_a_symlinked_context_directory_is_refused(
    mirror: tuple[MirrorCache, GitRepo], tmp_path: Path, target: str, message: str
) -> None:
    """#2: a context that is a link (out of the tree, or even inside it) is refused, and a
    context reached through one is no directory: nothing outside the commit is packed."""
    files = {"Dockerfile": "FROM scratch\n", "sub/a.txt": "a\n"}
    with pytest.raises(UnsafePathError, match=re.escape(message)):
        context_of(mirror, tmp_path, files, {"app": target}, context="app")
    with pytest.raises(UnsafePathError, match="context 'app/etc' is not a directory"):
        context_of(mirror, tmp_path, {"b.txt": "b\n"}, {}, context="app/etc")


@pytest.mark.parametrize(
    ("links", "files", "error", "message"),
    [
        (
            {"Dockerfile": "/etc/passwd"},
            {},
            UnsafePathError,
            "Dockerfile is a symlink that leaves the repository (to '/etc/passwd')",
        ),
        (
            {"Dockerfile": "../../x"},
            {},
            UnsafePathError,
            "Dockerfile is a symlink that leaves the repository",
        ),
        (
            {"Dockerfile": "loop", "loop": "Dockerfile"},
            {},
            UnsafePathError,
            "Dockerfile is a symlink loop",
        ),
        ({"Dockerfile": "gone"}, {}, SourceError, "Dockerfile is a symlink to nothing in commit"),
        (
            {},
            {"Dockerfile": "#" * (1024 * 1024 + 1)},
            UnsafePathError,
            "Dockerfile is 1,048,577 bytes, more than the 1,048,576 allowed",
        ),
        (
            {},
            {"Dockerfile": "FROM scratch\n", ".dockerignore": "x\n" * 600_000},
            UnsafePathError,
            ".dockerignore is 1,200,000 bytes, more than the 1,048,576 allowed",
        ),
        (
            {},
            {
                "Dockerfile": "FROM scratch\n",
                ".dockerignore": "".join(f"p{n}\n" for n in range(1001)),
            },
            BuildFailed,
            ".dockerignore has 1,001 patterns, more than the 1,000 allowed",
        ),
    ],
)
def test_a_dockerfile_or_dockerignore_that_leaves_the_tree_or_is_too_big_is_refused(
    mirror: tuple[MirrorCache, GitRepo],
    tmp_path: Path,
    links: dict[str, str],
    files: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    """#2, #5: a Dockerfile or .dockerignore read from git objects only: a link out of the
    tree, a loop, a dangling link, a file over 1 MiB, or over 1,000 patterns is refused,
    naming it (and the limit)."""
    with pytest.raises(error, match=re.escape(message)):
        context_of(mirror, tmp_path, {"a.txt": "a\n", **files}, links)


def test_a_checkout_directory_with_a_linked_dockerignore_or_dockerfile_is_refused(
    tmp_path: Path,
) -> None:
    """#2: packing a directory (the engine's path for a directory context) refuses a
    `.dockerignore` or a Dockerfile that is a link rather than read what it points at."""
    outside = tmp_path / "environ"
    outside.write_text("SECRET=canary-outside\n")
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    os.symlink(outside, root / ".dockerignore")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")

    with (
        open(tmp_path / "out.tar", "wb") as out,
        pytest.raises(UnsafePathError, match=r"\.dockerignore is a symlink"),
    ):
        pack_directory(root, dockerfile, out)

    os.unlink(root / ".dockerignore")
    os.symlink(outside, tmp_path / "Dockerfile.link")
    with (
        open(tmp_path / "out.tar", "wb") as out,
        pytest.raises(UnsafePathError, match=r"Dockerfile\.link' is a symlink: refused"),
    ):
        pack_directory(root, tmp_path / "Dockerfile.link", out)


@pytest.mark.parametrize(
    "patterns",
    [
        ["*.log", "!keep.log", "node_modules", "**/cache", "docs/*/draft?.md"],
        ["*", "!src", "src/**/*.pyc", "[Bb]uild/", "a/../b", ".", "!.dockerignore"],
        ["Secret*", "x[!0-9]y", "[a-"],
    ],
)
def test_the_repacked_context_excludes_what_docker_py_would(patterns: list[str]) -> None:
    """#2: the context repacked from git's tar matches .dockerignore as docker-py does
    (its PatternMatcher), though on RE2."""
    paths = [
        "a.log", "keep.log", "sub/keep.log", "node_modules", "node_modules/x/y.js",
        "deep/cache", "deep/er/cache/z", "docs/v1/draft1.md", "docs/v1/final.md", "src",
        "src/m.py", "src/pkg/m.pyc", "Build/o", "build/o", "b", "b/c", "secret.txt",
        "SECRETS", "xay", "x1y", "[a-", ".dockerignore", "Dockerfile",
    ]  # fmt: skip
    ours, theirs = IgnoreMatcher(patterns), PatternMatcher(patterns)

    assert [p for p in paths if ours.matches(p)] == [p for p in paths if theirs.matches(p)]


def test_a_dockerignore_built_to_backtrack_is_matched_in_linear_time(tmp_path: Path) -> None:
    """#5: a .dockerignore pattern that makes Python's backtracking regexes take exponential
    time (`*a*a*...*b` against a long name of a's) cannot wear a worker down."""
    script = (
        "import io, tarfile\n"
        "from builder.build.docker.contextfilter import member, repack\n"
        "source = io.BytesIO(member('a' * 60, b'x') + b'\\0' * 1024)\n"
        "repack(source, io.BytesIO(), ['*a' * 14 + '*b'], 'Dockerfile', {})\n"
    )
    # A process of its own, with a deadline: before the fix this ran for hours.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )

    assert done.returncode == 0, done.stderr
