"""Fetch exactly the pushed commit into a cached bare mirror, and export its tree.

Each configured repository has its own mirrors under the state directory
(`MirrorCache.for_repository`), one per clone URL, so a second build of a repository
fetches only what is new, a rebuild of a known commit fetches nothing, and no repository
ever reads another's commits. The export is `git archive` of the commit: the build context
holds the commit's files and no `.git`, so a clone token can never reach it. Tokens travel
as an HTTP header through git's `GIT_CONFIG_*` environment, never in a URL, an argument list
or the mirror's config, and never follow a redirect. Every git call puts `--` (or
`--end-of-options`) before URLs and refs, and allows only the URL's own transport.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import git

from builder.cloneurl import transport_of
from builder.errors import SourceError, UnsafePathError, from_git_error
from builder.logsink import LineSink
from builder.paths import MAX_FILE_BYTES
from builder.redact import redact

_SHA = re.compile(r"^[0-9a-f]{40}$")
_FORGE_DIR = re.compile(r"[^a-z0-9-]+")
# Every fetch into a mirror, the pipeline's and the background one: no tags but those a
# refspec names, and refs moved even where a force-push rewrote them.
_FETCH_OPTIONS = ("--no-tags", "--force")


def _commit_refspec(sha: str, ref: str) -> str:
    """The commit by id, kept under the pushed ref's name (no ref listing with protocol v2)."""
    return f"+{sha}:{ref}"


def _git_environment(clone_url: str, credentials: tuple[str, str] | None) -> dict[str, str]:
    """What a git call that talks to `clone_url` runs with: only the URL's own transport
    (no `ext::`, no `file://` behind an https URL's redirect or a submodule), and the token,
    if any, as a header that no redirect carries to another host."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/true",
        "GIT_ALLOW_PROTOCOL": transport_of(clone_url),
    }
    if credentials:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="2",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {token}",
            # git sends extra headers to wherever a redirect leads: none is followed.
            GIT_CONFIG_KEY_1="http.followRedirects",
            GIT_CONFIG_VALUE_1="false",
        )
    return env


def _tree_of(sha: str, directory: str) -> str:
    """The git tree-ish of `directory` (relative to the root) at commit `sha`."""
    return sha if directory in ("", ".") else f"{sha}:{directory.strip('/')}"


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
    env = _git_environment(clone_url, credentials)
    secrets = (credentials[1],) if credentials else ()
    shown = redact(clone_url, secrets)
    try:
        output = git.cmd.Git().ls_remote(
            "--symref",
            "--",
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
    """Bare mirrors under `root`, one per clone URL, each guarded by a file lock. The
    state directory's cache holds one such cache per configured repository."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def for_repository(self, forge: str, name: str) -> MirrorCache:
        """The mirrors of one configured repository: `<root>/<forge>/<hash>-<slug>/`.
        Keyed by repository, not by URL, so that a payload naming another repository's
        URL finds only its own repository's mirror, without that repository's commits."""
        digest = hashlib.sha256(f"{forge}\0{name}".encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:40]
        return MirrorCache(self.root / _FORGE_DIR.sub("-", forge) / f"{digest}-{slug}")

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
        log: LineSink = lambda _line: None,
    ) -> CommitInfo:
        """Make the mirror hold commit `sha` (fetched from `ref` of `clone_url`)."""
        if not _SHA.match(sha):
            raise SourceError(f"not a full commit id: {sha!r}")
        path = self.mirror_path(clone_url)
        env = _git_environment(clone_url, credentials)
        secrets = (credentials[1],) if credentials else ()
        with self._locked(path) as repo:
            commit = self._commit_info(repo, sha)
            if commit is not None:
                log(f"commit {sha[:12]} is already in the cached mirror: nothing to fetch")
                return commit
            return self._fetch(repo, clone_url, ref, sha, env, secrets, log)

    def start_fetch(
        self,
        clone_url: str,
        ref: str,
        sha: str,
        credentials: tuple[str, str] | None = None,
        timeout_seconds: int = 300,
    ) -> subprocess.Popen[bytes] | None:
        """Start fetching `sha` into the mirror in the background: a git process that holds
        the mirror's lock while it runs (util-linux's `flock`), so a `fetch` in any process
        waits for it, then finds the commit there. Best effort, bounded by coreutils'
        `timeout`. None where nothing was started: no mirror yet (a first clone stays the
        build's own, in its log) or no `flock` on this machine."""
        path = self.mirror_path(clone_url)
        if not _SHA.match(sha) or not (path / "HEAD").exists() or shutil.which("flock") is None:
            return None
        command = ["git", "-C", str(path), "fetch", "--quiet", *_FETCH_OPTIONS]
        return subprocess.Popen(
            [
                "flock",
                str(path.with_suffix(".lock")),
                "timeout",
                str(timeout_seconds),
                *command,
                "--",
                clone_url,
                _commit_refspec(sha, ref),
            ],
            env={**os.environ, **_git_environment(clone_url, credentials)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: flock, timeout and git stop as one
        )

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
        treeish = _tree_of(sha, directory)
        wanted = {name.rstrip("/") for name in names}
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                listing = repo.git.ls_tree("-z", "--end-of-options", treeish, "--", *sorted(wanted))
            except git.GitCommandError:
                return None  # no such directory (or not one) at that commit
        modes = {}
        for entry in filter(None, listing.split("\0")):
            meta, _, path = entry.partition("\t")
            if path in wanted:
                modes[path] = meta.split(" ", 1)[0]
        return modes

    def read_file(
        self, clone_url: str, sha: str, path: str, max_bytes: int = MAX_FILE_BYTES
    ) -> bytes:
        """The file at `path` of commit `sha`, read from git objects, never from a disk: a
        symlink is followed inside the commit's tree (git's own resolver, at most 40 links
        deep), and one that leaves it, loops or dangles is refused, as is a file over
        `max_bytes` (git says its size before its bytes, so nothing big is read)."""
        if "\n" in path or "\0" in path:
            raise UnsafePathError(f"{path!r}: a path with a newline is refused")
        with self._locked(self.mirror_path(clone_url)) as repo:
            # One git process: --follow-symlinks works in --batch modes only, and reports a
            # link that leaves the tree as "symlink SIZE\nTARGET", never following it.
            command = ["git", "--git-dir", str(repo.git_dir), "cat-file", "--batch"]
            with subprocess.Popen(
                [*command, "--follow-symlinks"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            ) as git_process:
                assert git_process.stdin is not None and git_process.stdout is not None
                git_process.stdin.write(f"{sha}:{path}\n".encode())
                git_process.stdin.close()
                fields = git_process.stdout.readline(4096).decode("utf-8", "replace").split()
                if len(fields) != 3 or fields[1] != "blob" or not fields[2].isdigit():
                    detail = git_process.stdout.readline(4096).decode("utf-8", "replace")
                    git_process.kill()
                    raise _unreadable(path, sha, fields or [""], detail.strip())
                size = int(fields[2])
                if size > max_bytes:
                    git_process.kill()
                    raise UnsafePathError(
                        f"{path} is {size:,} bytes, more than the {max_bytes:,} allowed for it"
                    )
                data = git_process.stdout.read(size)
            if len(data) != size:
                raise SourceError(f"reading {path} of {sha[:12]} failed: git stopped short")
            return data

    def archive_to(self, clone_url: str, sha: str, subdir: str, out: BinaryIO) -> None:
        """Write the tree of `subdir` at commit `sha` to `out` as an uncompressed tar."""
        treeish = _tree_of(sha, subdir)
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                repo.git.archive("--format=tar", "--end-of-options", treeish, output_stream=out)
            except git.GitCommandError as exc:
                raise from_git_error(exc, f"exporting {sha[:12]}") from exc

    def is_ancestor(self, clone_url: str, ancestor: str, descendant: str) -> bool | None:
        """Is `ancestor` in the history of `descendant`? None when the mirror lacks either."""
        with self._locked(self.mirror_path(clone_url)) as repo:
            try:
                repo.git.merge_base("--is-ancestor", "--end-of-options", ancestor, descendant)
            except git.GitCommandError as exc:
                # 1: not an ancestor; anything else (128): a commit the mirror lacks.
                return False if exc.status == 1 else None
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
                        *_FETCH_OPTIONS,
                        "--",
                        clone_url,
                        f"+{ref}:{ref}",
                        env=_git_environment(clone_url, credentials),
                    )
                    base = repo.git.merge_base("--end-of-options", ref, sha).strip()
                except git.GitCommandError:
                    return None
            if base == sha and not before.strip("0"):
                return None  # a new ref at a commit the default branch has: nothing to compare
            if base == sha:
                return []
            try:
                output = repo.git.diff("--name-only", "--no-renames", "--end-of-options", base, sha)
            except git.GitCommandError:
                return None
            return [line for line in output.splitlines() if line]

    def prune(self, budget_bytes: int) -> list[Path]:
        """Remove the least recently used mirrors until the rest fit in `budget_bytes`; a
        mirror in use (its lock held) is skipped."""
        if not self.root.exists():
            return []
        # Each repository's own (for_repository), and any from before they had their own.
        found = [*self.root.glob("*.git"), *self.root.glob("*/*/*.git")]
        mirrors = sorted(found, key=lambda p: _mtime(p.with_suffix(".lock")))
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
    def _commit_info(repo: git.Repo, sha: str) -> CommitInfo | None:
        """The commit's date, author and message; None when the mirror lacks it. One git
        call, where asking first and reading after took three."""
        try:
            shown = repo.git.show(
                "-s", "--format=%ct%x00%an%x00%B", "--end-of-options", f"{sha}^{{commit}}", "--"
            )
        except git.GitCommandError:
            return None
        stamp, author, message = shown.split("\0", 2)
        return CommitInfo(
            sha=sha,
            committed_at=datetime.fromtimestamp(int(stamp), UTC),
            author=author,
            message=message.strip(),
        )

    @staticmethod
    def _has_commit(repo: git.Repo, sha: str) -> bool:
        try:
            repo.git.cat_file("-e", "--end-of-options", f"{sha}^{{commit}}")
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
        log: LineSink,
    ) -> CommitInfo:
        shown = redact(clone_url, secrets)
        # The commit by id first, kept under the pushed ref's name: with protocol v2 git
        # then skips listing the server's refs, one round trip less (40 ms of 105 here).
        # Then the pushed ref (a server that refuses unadvertised objects), then every
        # branch and tag.
        attempts = [
            [_commit_refspec(sha, ref)],
            [f"+{ref}:{ref}"],
            ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
        ]
        last_error: Exception | None = None
        for refspecs in attempts:
            log(f"fetching {' '.join(refspecs)} from {shown}")
            try:
                repo.git.fetch(*_FETCH_OPTIONS, "--", clone_url, *refspecs, env=env)
            except git.GitCommandError as exc:
                last_error = exc
                continue
            last_error = None  # the server answered; only the commit may be missing
            commit = self._commit_info(repo, sha)
            if commit is not None:
                return commit
        if last_error is not None and not self._reachable_error(last_error):
            raise from_git_error(last_error, f"fetching {shown}") from last_error
        raise SourceError(f"commit {sha} is not in {shown} (was it force-pushed away?)")

    @staticmethod
    def _reachable_error(exc: Exception) -> bool:
        """True when git reached the server and only the object was missing."""
        text = str(getattr(exc, "stderr", "") or "").lower()
        return (
            "not our ref" in text
            or "unadvertised object" in text
            or "couldn't find remote ref" in text
            or "no such remote ref" in text
        )

    @staticmethod
    def _archive(repo: git.Repo, sha: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as stream:
            try:
                repo.git.archive("--format=tar", "--end-of-options", sha, output_stream=stream)
            except git.GitCommandError as exc:
                raise from_git_error(exc, f"exporting {sha[:12]}") from exc
            stream.seek(0)
            with tarfile.open(fileobj=stream) as archive:
                # The 'tar' filter refuses members that would land outside `dest`.
                archive.extractall(dest, filter="tar")


def _unreadable(path: str, sha: str, fields: list[str], detail: str) -> Exception:
    """Why `git cat-file --batch-check --follow-symlinks` gave no blob for `path`."""
    if fields[0] == "symlink":
        return UnsafePathError(
            f"{path} is a symlink that leaves the repository (to {detail[:200]!r}): refused"
        )
    if fields[0] == "loop":
        return UnsafePathError(f"{path} is a symlink loop (or links over 40 deep): refused")
    if fields[0] == "dangling":
        return SourceError(f"{path} is a symlink to nothing in commit {sha[:12]}")
    return SourceError(f"{path} is not a file of commit {sha[:12]}")
