"""What a worker process knows that a job's arguments do not: its config and environment.

Jobs carry data only (a plan's `to_dict()`); secrets and the Docker connection belong to the
worker that runs them. `hookbuild worker` installs its context once at start; forked work
horses inherit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from builder.config import Config
from builder.errors import HookbuildError


@dataclass(frozen=True)
class WorkerContext:
    config: Config
    environ: Mapping[str, str]  # DOCKER_HOST and friends, for the Docker client
    name: str
    in_process: bool = False  # jobs run in the worker's own process (no work horse to end)

    @property
    def state_dir(self) -> Path:
        return Path(self.config.state_dir or ".hookbuild")


_current: ContextVar[WorkerContext | None] = ContextVar("hookbuild_worker_context", default=None)


def install(context: WorkerContext) -> None:
    _current.set(context)


def has_context() -> bool:
    return _current.get() is not None


def current() -> WorkerContext:
    context = _current.get()
    if context is None:
        raise HookbuildError("this process is not a hookbuild worker (no worker context installed)")
    return context
