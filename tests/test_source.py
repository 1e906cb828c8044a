"""Fetching the pushed commit: exact commit, cached mirror, tokens as headers only, safe paths."""

from __future__ import annotations

import fcntl
import re
import time
from pathlib import Path

import pytest

from builder.build.source import MirrorCache
from builder.errors import SourceError, UnsafePathError
from builder.paths import build_paths
from tests.conftest import MakeRepo
from tests.git_http import GitHttpServer

TOKEN = "ghp_token-that-must-never-leak-123"


def files_containing(root: Path, needle: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
            found.append(path)
    return found


def test_exports_exactly_the_pushed_commit_after_the_branch_moved_on(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    first = repo.commit({"a.txt": "one\n"})
    repo.push("main")
    repo.commit({"a.txt": "two\n"})
    repo.push("main")
    mirrors = MirrorCache(tmp_path / "mirrors")

    mirrors.fetch(repo.url, "refs/heads/main", first)
    mirrors.checkout(repo.url, first, tmp_path / "out")

    assert (tmp_path / "out" / "a.txt").read_text() == "one\n"
    assert not (tmp_path / "out" / ".git").exists()


def test_second_build_fetches_only_whats_new_and_a_rebuild_fetches_nothing(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    first = repo.commit({"a.txt": "one\n"})
    repo.push("main")
    mirrors = MirrorCache(tmp_path / "mirrors")
    logs: list[str] = []
    mirrors.fetch(repo.url, "refs/heads/main", first, log=logs.append)
    second = repo.commit({"b.txt": "two\n"})
    repo.push("main")

    logs.clear()
    mirrors.fetch(repo.url, "refs/heads/main", second, log=logs.append)
    assert logs == [f"fetching +{second}:refs/heads/main from {repo.url}"]
    logs.clear()
    mirrors.fetch(repo.url, "refs/heads/main", first, log=logs.append)
    assert logs == [f"commit {first[:12]} is already in the cached mirror: nothing to fetch"]
    assert len(list((tmp_path / "mirrors").glob("*.git"))) == 1


def test_a_server_that_refuses_unadvertised_commits_is_fetched_by_ref(
    make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit is asked for by id first; a protocol v0 server refuses an id that is no
    branch tip, and the pushed ref is fetched instead."""
    repo = make_repo()
    older = repo.commit({"a.txt": "one\n"})
    repo.commit({"a.txt": "two\n"})
    repo.push("main")
    for key, value in {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.version",
        "GIT_CONFIG_VALUE_0": "0",
    }.items():
        monkeypatch.setenv(key, value)
    logs: list[str] = []

    mirrors = MirrorCache(tmp_path / "m")
    mirrors.fetch(repo.url, "refs/heads/main", older, log=logs.append)
    mirrors.checkout(repo.url, older, tmp_path / "o")

    assert (tmp_path / "o" / "a.txt").read_text() == "one\n"
    assert logs == [
        f"fetching +{older}:refs/heads/main from {repo.url}",
        f"fetching +refs/heads/main:refs/heads/main from {repo.url}",
    ]


def test_unknown_commit_is_a_clear_error(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    repo.commit({"a.txt": "one\n"})
    repo.push("main")
    with pytest.raises(SourceError, match=r"commit f{40} is not in git://"):
        MirrorCache(tmp_path / "m").fetch(repo.url, "refs/heads/main", "f" * 40)


def test_unreachable_server_is_a_transient_source_error(tmp_path: Path) -> None:
    from tests.services import free_port

    url = f"git://127.0.0.1:{free_port()}/nothing.git"
    with pytest.raises(SourceError) as caught:
        MirrorCache(tmp_path / "m").fetch(url, "refs/heads/main", "a" * 40)
    assert caught.value.transient
    assert str(caught.value).startswith(f"fetching {url} failed:")


def test_token_travels_as_a_header_and_lands_nowhere(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": "FROM scratch\n"})
    repo.push("main")
    mirrors = MirrorCache(tmp_path / "mirrors")
    logs: list[str] = []
    with GitHttpServer(repo.bare.parent, ("x-access-token", TOKEN)) as server:
        url = server.url(repo.bare.name)
        mirrors.fetch(url, "refs/heads/main", sha, ("x-access-token", TOKEN), logs.append)
        mirrors.checkout(url, sha, tmp_path / "out")
        assert server.expected in server.authorizations

    assert (tmp_path / "out" / "Dockerfile").read_text() == "FROM scratch\n"
    assert files_containing(tmp_path / "mirrors", TOKEN) == []
    assert files_containing(tmp_path / "out", TOKEN) == []
    assert not any(TOKEN in line for line in logs)


def test_wrong_token_fails_without_showing_it(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    sha = repo.commit({"a": "b"})
    repo.push("main")
    with (
        GitHttpServer(repo.bare.parent, ("x-access-token", TOKEN)) as server,
        pytest.raises(SourceError) as caught,
    ):
        MirrorCache(tmp_path / "m").fetch(
            server.url(repo.bare.name), "refs/heads/main", sha, ("u", "wrong-one")
        )
    assert "wrong-one" not in str(caught.value)
    assert "fetching http://127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("context", "dockerfile", "message"),
    [
        ("..", "Dockerfile", "context '..' may not contain '..'"),
        (".", "../Dockerfile", "dockerfile '../Dockerfile' may not contain '..'"),
        ("/etc", "Dockerfile", "context '/etc' must be relative to the repository root"),
    ],
)
def test_paths_that_leave_the_repository_are_refused(
    context: str, dockerfile: str, message: str
) -> None:
    """Symlinks that point outside: tests/hostile/test_context.py, against a real mirror."""
    with pytest.raises(UnsafePathError, match=re.escape(message)):
        build_paths(context, dockerfile)


def test_paths_inside_the_repository_resolve() -> None:
    paths = build_paths("app/", "app/./Dockerfile")
    assert (paths.context, paths.dockerfile, paths.in_context) == (
        "app",
        "app/Dockerfile",
        "Dockerfile",
    )
    assert build_paths(".", "docker/Dockerfile").in_context == "docker/Dockerfile"
    assert build_paths("app", "docker/Dockerfile").in_context is None


def test_ancestry_in_the_mirror(make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    older = repo.commit({"a.txt": "one\n"})
    newer = repo.commit({"a.txt": "two\n"})
    repo.push("main")
    mirrors = MirrorCache(tmp_path / "m")
    mirrors.fetch(repo.url, "refs/heads/main", newer)

    assert mirrors.is_ancestor(repo.url, older, newer) is True
    assert mirrors.is_ancestor(repo.url, newer, older) is False
    assert mirrors.is_ancestor(repo.url, "f" * 40, newer) is None  # not in the mirror


def test_a_background_fetch_holds_the_mirror_until_the_commit_is_there(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """What a worker starts as it takes a build: the build's own fetch, in this or another
    process, waits for it and finds the commit, with nothing more to fetch."""
    repo = make_repo()
    first = repo.commit({"a.txt": "one\n"})
    repo.push("main")
    mirrors = MirrorCache(tmp_path / "mirrors")
    assert mirrors.start_fetch(repo.url, "refs/heads/main", first) is None  # no mirror yet
    mirrors.fetch(repo.url, "refs/heads/main", first)
    second = repo.commit({"a.txt": "two\n"})
    repo.push("main")

    process = mirrors.start_fetch(repo.url, "refs/heads/main", second)
    assert process is not None
    lock = mirrors.mirror_path(repo.url).with_suffix(".lock")
    held = False
    deadline = time.monotonic() + 5
    while not held and process.poll() is None and time.monotonic() < deadline:
        with open(lock) as probe:  # until the background git holds the mirror's lock
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(probe, fcntl.LOCK_UN)
            except BlockingIOError:
                held = True
        time.sleep(0.001)
    assert held  # a fetch takes ~60 ms here: the probe sees the lock taken
    logs: list[str] = []

    commit = mirrors.fetch(repo.url, "refs/heads/main", second, log=logs.append)

    assert commit.sha == second
    assert logs == [f"commit {second[:12]} is already in the cached mirror: nothing to fetch"]
    assert process.wait(timeout=10) == 0
