"""Fetch exactly the pushed commit into a cached bare mirror, and export its tree.

One bare mirror per clone URL lives under the state directory, so a second build of a
repository fetches only what is new, and a rebuild of a known commit fetches nothing. The
export is `git archive` of the commit: the build context holds the commit's files and no
`.git`, so a clone token can never reach it. Tokens travel as an HTTP header through git's
`GIT_CONFIG_*` environment, never in a URL, an argument list or the mirror's config.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import git

from builder.errors import SourceError, from_git_error
from builder.redact import redact

_SHA = re.compile(r"^[0-9a-f]{40}$")


def _auth_environment(credentials: tuple[str, str] | None) -> dict[str, str]:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true"}
    if credentials:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {token}",
        )
    return env


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    committed_at: datetime  # UTC
    author: str
    message: str


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def resolve_ref(
    clone_url: str, ref: str | None, credentials: tuple[str, str] | None = None, timeout: int = 30
) -> tuple[str, str]:
    """`git ls-remote`: the full ref and its commit. `ref` may be short (`main`, `v1.2`);
    None means the default branch. Annotated tags resolve to the commit they point at."""
    env = _auth_environment(credentials)
    secrets = (credentials[1],) if credentials else ()
    shown = redact(clone_url, secrets)
    try:
        output = git.cmd.Git().ls_remote(
            "--symref",
            clone_url,
            "HEAD",
            "refs/heads/*",
            "refs/tags/*",
            env=env,
            kill_after_timeout=timeout,
        )
    except git.GitCommandError as exc:
        raise from_git_error(exc, f"listing refs of {shown}") from exc
    refs: dict[str, str] = {}
    head_target = None
    for line in str(output).splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            head_target = line[5:].split("\t")[0]
            continue
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):
            refs[name[:-3]] = sha  # the peeled commit of an annotated tag wins
        else:
            refs.setdefault(name, sha)
    wanted = [head_target] if ref is None and head_target else []
    if ref is not None:
        wanted = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    for name in wanted:
        if name in refs:
            return name, refs[name]
    what = "a default branch" if ref is None else f"{ref!r}"
    raise SourceError(f"{shown} has no {what}")


class MirrorCache:
    """Bare mirrors under `root`, one per clone URL, each guarded by a file lock."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mirror_path(self, clone_url: str) -> Path:
        digest = hashlib.sha256(clone_url.encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", clone_url.rsplit("/", 2)[-2:][-1])[:40]
        return self.root / f"{name}-{digest}.git"

    @contextmanager
    def _locked(self, path: Path) -> Iterator[git.Repo]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:  # its mtime: when last used
            # Two workers on one machine share the mirror; git's own locks would make the
            # second fetch fail rather than wait.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (path / "HEAD").exists():
                git.Repo.init(path, bare=True)
            yield git.Repo(path)

    def fetch(
        self,
        clone_url: str,
        ref: str,
        sha: str,
        credentials: tuple[str, str] | None = None,
        log: Callable[[str], None] = lambda _line: None,
    ) -> CommitInfo:
        """Make the mirror hold commit `sha` (fetched from `ref` of `clone_url`)."""
        if not _SHA.match(sha):
            raise SourceError(f"not a full commit id: {sha!r}")
        path = self.mirror_path(clone_url)
        env = _auth_environment(credentials)
        secrets = (credentials[1],) if credentials else ()
        with self._locked(path) as repo:
            if self._has_commit(repo, sha):
                log(f"commit {sha[:12]} is already in the cached mirror: nothing to fetch")
            else:
                self._fetch(repo, clone_url, ref, sha, env, secrets, log)
            commit = repo.commit(sha)
            return CommitInfo(
                sha=sha,
                committed_at=datetime.fromtimestamp(commit.committed_date, UTC),
                author=str(commit.author.name),
                message=str(commit.message).strip(),
            )

    def export(
        self,
        clone_url: str,
        ref: str,
        sha: str,
        dest: Path,
        credentials: tuple[str, str] | None = None,
        log: Callable[[str], None] = lambda _line: None,
    ) -> CommitInfo:
        """Make `dest` hold the tree of commit `sha` (fetched from `ref` of `clone_url`)."""
        commit = self.fetch(clone_url, ref, sha, credentials, log)
        self.checkout(clone_url, sha, dest)
        return commit

    def checkout(self, clone_url: str, sha: str, dest: Path) -> None:
        """Make `dest` hold the tree of commit `sha`, already in the mirror."""
        with self._locked(self.mirror_path(clone_url)) as repo:
            self._archive(repo, sha, dest)

    def entry_modes(
        self, clone_url: str, sha: str, directory: str, names: Iterable[str]
    ) -> dict[str, str] | None:
        """The git mode of each of `names` (paths inside `directory`, none a directory
        holding another) that has an entry there ("100644" a file, "120000" a symlink, ...),
        read with one `ls-tree`; None when `directory` is not a directory of the commit.
        Symlinks are not followed: a directory reached through one is none."""
        treeish = sha if directory in ("", ".") else f"{sha}:{directory.strip('/')}"
        wanted = {name.rstrip("/") for name in names}
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                listing = repo.git.ls_tree("-z", treeish, "--", *sorted(wanted))
            except git.GitCommandError:
                return None  # no such directory (or not one) at that commit
        modes = {}
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            if path in wanted:
                modes[path] = meta.split(" ", 1)[0]
        return modes

    def read_file(self, clone_url: str, sha: str, path: str) -> bytes:
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                data: bytes = repo.odb.stream(repo.tree(sha)[path].binsha).read()
            except (KeyError, ValueError) as exc:
                raise SourceError(f"{path} is not in commit {sha[:12]}") from exc
            return data

    def archive_to(self, clone_url: str, sha: str, subdir: str, out: BinaryIO) -> None:
        """Write the tree of `subdir` at commit `sha` to `out` as an uncompressed tar."""
        treeish = sha if subdir in ("", ".") else f"{sha}:{subdir.strip('/')}"
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                repo.archive(out, treeish=treeish, format="tar")
            except git.GitCommandError as exc:
                raise from_git_error(exc, f"exporting {sha[:12]}") from exc

    def is_ancestor(self, clone_url: str, ancestor: str, descendant: str) -> bool | None:
        """Is `ancestor` in the history of `descendant`? None when the mirror lacks either."""
        with self._locked(self.mirror_path(clone_url)) as repo:
            if not (self._has_commit(repo, ancestor) and self._has_commit(repo, descendant)):
                return None
            try:
                repo.git.merge_base("--is-ancestor", ancestor, descendant)
            except git.GitCommandError:
                return False
            return True

    def changed_files(
        self,
        clone_url: str,
        before: str,
        sha: str,
        default_branch: str,
        credentials: tuple[str, str] | None = None,
    ) -> list[str] | None:
        """Files the push changed: `before..sha`; for a new branch (or a `before` that a force
        push made unknown), what `sha` changed since it left the default branch. None when
        there is nothing to compare with."""
        with self._locked(self.mirror_path(clone_url)) as repo:
            base = before if before.strip("0") and self._has_commit(repo, before) else None
            if base is None:
                ref = f"refs/heads/{default_branch}"
                try:
                    repo.git.fetch(
                        "--no-tags",
                        "--force",
                        clone_url,
                        f"+{ref}:{ref}",
                        env=_auth_environment(credentials),
                    )
                    base = repo.git.merge_base(ref, sha).strip()
                except git.GitCommandError:
                    return None
            if base == sha and not before.strip("0"):
                return None  # a new ref at a commit the default branch has: nothing to compare
            if base == sha:
                return []
            try:
                output = repo.git.diff("--name-only", "--no-renames", base, sha)
            except git.GitCommandError:
                return None
            return [line for line in output.splitlines() if line]

    def prune(self, budget_bytes: int) -> list[Path]:
        """Remove the least recently used mirrors until the rest fit in `budget_bytes`; a
        mirror in use (its lock held) is skipped."""
        if not self.root.exists():
            return []
        mirrors = sorted(self.root.glob("*.git"), key=lambda p: _mtime(p.with_suffix(".lock")))
        sizes = {m: _size(m) for m in mirrors}
        used = sum(sizes.values())
        removed = []
        for mirror in mirrors:
            if used <= budget_bytes:
                break
            with open(mirror.with_suffix(".lock"), "w") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                shutil.rmtree(mirror, ignore_errors=True)
            used -= sizes[mirror]
            removed.append(mirror)
        return removed

    @staticmethod
    def _has_commit(repo: git.Repo, sha: str) -> bool:
        try:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
        except git.GitCommandError:
            return False
        return True

    def _fetch(
        self,
        repo: git.Repo,
        clone_url: str,
        ref: str,
        sha: str,
        env: dict[str, str],
        secrets: tuple[str, ...],
        log: Callable[[str], None],
    ) -> None:
        shown = redact(clone_url, secrets)
        # The pushed ref first (cheap, and usually holds the commit); then the commit by id,
        # for a ref that has moved on since; then every branch and tag.
        attempts = [
            [f"+{ref}:{ref}"],
            [sha],
            ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
        ]
        last_error: Exception | None = None
        for refspecs in attempts:
            log(f"fetching {' '.join(refspecs)} from {shown}")
            try:
                repo.git.fetch("--no-tags", "--force", clone_url, *refspecs, env=env)
            except git.GitCommandError as exc:
                last_error = exc
                continue
            if self._has_commit(repo, sha):
                return
        if last_error is not None and not self._reachable_error(last_error):
            raise from_git_error(last_error, f"fetching {shown}") from last_error
        raise SourceError(f"commit {sha} is not in {shown} (was it force-pushed away?)")

    @staticmethod
    def _reachable_error(exc: Exception) -> bool:
        """True when git reached the server and only the object was missing."""
        text = str(getattr(exc, "stderr", "") or "").lower()
        return (
            "not our ref" in text
            or "couldn't find remote ref" in text
            or "no such remote ref" in text
        )

    @staticmethod
    def _archive(repo: git.Repo, sha: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as stream:
            try:
                repo.archive(stream, treeish=sha, format="tar")
            except git.GitCommandError as exc:
                raise from_git_error(exc, f"exporting {sha[:12]}") from exc
            stream.seek(0)
            with tarfile.open(fileobj=stream) as archive:
                # The 'tar' filter refuses members that would land outside `dest`.
                archive.extractall(dest, filter="tar")
