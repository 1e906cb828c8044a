"""Each build's directories on the worker's disk (its checkout, its scratch, its context
tar), under one directory named for the build: `state/work/run-<build id>/`.

The pipeline removes what it made when it ends; a build whose work horse was killed
(cancel, timeout, `kill -9`) cannot. Its worker removes the build's directory once the horse
is gone, and a worker that starts removes every directory that no live build owns: those
left by a worker that was killed itself.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from runners.records import BuildStore
from runners.servicelog import get_logger

log = get_logger(__name__)
PREFIX = "run-"
# Directories of hookbuild versions before `run-*` name no build: swept once this old.
UNOWNED_AGE_SECONDS = 24 * 3600


def work_root(state_dir: Path) -> Path:
    return state_dir / "work"


def build_dir(state_dir: Path, build_id: str) -> Path:
    return work_root(state_dir) / f"{PREFIX}{build_id}"


def remove(state_dir: Path, build_id: str) -> None:
    shutil.rmtree(build_dir(state_dir, build_id), ignore_errors=True)


def sweep(state_dir: Path, store: BuildStore) -> list[Path]:
    """Remove what no live build owns (a running build with a heartbeat); returns it."""
    root = work_root(state_dir)
    if not root.is_dir():
        return []
    removed = []
    old = time.time() - UNOWNED_AGE_SECONDS
    for entry in root.iterdir():
        if entry.name.startswith(PREFIX):
            build_id = entry.name.removeprefix(PREFIX)
            if store.is_alive(build_id) and store.field(build_id, "status") == "running":
                continue
        elif not entry.name.startswith(("build-", "scratch-")) or entry.lstat().st_mtime > old:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    if removed:
        log.info("removed the directories of builds that ended without", count=len(removed))
    return removed
