"""Fixtures: the real services (session-wide), a clean Redis per test, git repositories."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from tests import services
from tests.registry import RegistryReader

# Published forge payloads, copied byte for byte from shared/fixtures/webhooks with their
# SOURCES.md, so that a clone of this repository passes its tests with nothing beside it.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"
REGISTRY_USER = ("hookbuild", "registry-secret-123")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the Docker engine (its fixtures reach `docker_host`) is marked
    `docker`, whether or not it says so: `scripts/test --fast` leaves those out."""
    for item in items:
        if "docker_host" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def service_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_port(service_root: Path) -> Iterator[int]:
    service, port = services.start_redis(service_root / "redis")
    yield port
    service.stop()


@pytest.fixture
def redis_url(redis_port: int) -> str:
    return f"redis://127.0.0.1:{redis_port}/0"


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A real Redis database, emptied before each test."""
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def docker_host(service_root: Path) -> Iterator[str]:
    """A real Docker engine: $HOOKBUILD_TEST_DOCKER_HOST, else a dockerd of our own."""
    given = os.environ.get("HOOKBUILD_TEST_DOCKER_HOST")
    if given:
        services.import_busybox(given, service_root / "busybox")
        yield given
        return
    with services.short_dir("dockerd") as directory:
        service, host = services.start_dockerd(directory)
        services.import_busybox(host, service_root / "busybox")
        yield host
        service.stop(timeout=30)


@pytest.fixture(scope="session")
def second_docker_host(service_root: Path, docker_host: str) -> Iterator[str]:
    """Another real Docker engine beside the first, with its own socket, data and exec root,
    started as scripts/up starts one: its BuildKit clips no step's output (the first
    engine's does, as an engine on its defaults would)."""
    with services.short_dir("dockerd-2") as directory:
        service, host = services.start_dockerd(directory, services.UNCLIPPED_LOGS)
        # The same base image as the first engine's (as two engines pulling one base would).
        services.copy_image(docker_host, host, services.BASE_IMAGE)
        yield host
        service.stop(timeout=30)


@pytest.fixture(scope="session")
def registry(service_root: Path) -> Iterator[RegistryReader]:
    """A real Distribution v2 registry without auth."""
    service, port = services.start_registry(service_root / "registry-open")
    yield RegistryReader(port)
    service.stop()


@pytest.fixture(scope="session")
def auth_registry(service_root: Path) -> Iterator[RegistryReader]:
    """A real registry that wants htpasswd basic auth."""
    service, port = services.start_registry(service_root / "registry-auth", REGISTRY_USER)
    yield RegistryReader(port, REGISTRY_USER)
    service.stop()


# The session's git daemon as a `clone_hosts` entry, once the git_daemon fixture started it.
_GIT_DAEMON: list[str] = []


def local_clone_settings(schemes: str = "git") -> str:
    """A repository's config lines that let a payload's clone URL name the session's git
    daemon (git://127.0.0.1:PORT), as a self-hosted forge's configured host."""
    hosts = ", ".join(f"'{address}'" for address in _GIT_DAEMON) or "'127.0.0.1:9'"
    return f"    clone_hosts: [{hosts}]\n    clone_schemes: [{schemes}]\n"


@pytest.fixture(scope="session")
def git_daemon(service_root: Path) -> Iterator[tuple[Path, int]]:
    base = service_root / "git"
    base.mkdir()
    service, port = services.start_git_daemon(base)
    _GIT_DAEMON.append(f"127.0.0.1:{port}")
    yield base, port
    _GIT_DAEMON.remove(f"127.0.0.1:{port}")
    service.stop()


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class GitRepo:
    """A working repository whose pushes go to a bare repository served by git daemon."""

    work: Path
    bare: Path
    url: str
    name: str
    pushed: list[str] = field(default_factory=list)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, ref: str = "main") -> None:
        git(self.work, "push", "-q", "--force", str(self.bare), f"HEAD:{ref}")

    def tag(self, name: str) -> str:
        git(self.work, "tag", "-f", name)
        git(self.work, "push", "-q", "--force", str(self.bare), f"refs/tags/{name}")
        return git(self.work, "rev-parse", "HEAD")


MakeRepo = Callable[..., GitRepo]


@pytest.fixture
def make_repo(git_daemon: tuple[Path, int], tmp_path: Path) -> MakeRepo:
    base, port = git_daemon

    def make(name: str = "acme/web") -> GitRepo:
        slug = f"{name.replace('/', '-')}-{os.urandom(4).hex()}"
        bare = base / f"{slug}.git"
        git(base, "init", "-q", "--bare", "-b", "main", str(bare))
        work = tmp_path / f"work-{slug}"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        return GitRepo(work, bare, f"git://127.0.0.1:{port}/{slug}.git", name)

    return make


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_push_body(
    repository: str,
    ref: str,
    after: str,
    clone_url: str,
    *,
    before: str = "0" * 40,
    message: str = "change",
) -> bytes:
    """A real GitHub push payload (from tests/fixtures/webhooks) pointed at our repository."""
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    payload["ref"] = ref
    payload["after"] = after
    payload["before"] = before
    payload["deleted"] = False
    payload["repository"]["full_name"] = repository
    payload["repository"]["clone_url"] = clone_url
    payload["head_commit"]["id"] = after
    payload["head_commit"]["message"] = message
    return json.dumps(payload).encode()
