"""Secret build args: `secret_build_args:` of a repository or an image.

Plans travel through the queue and are kept in build records, so they never hold these
values: a worker looks them up in its own config as it builds (`for_plan`), passes them
to the engine with the plan's build args, and masks each value in every line it logs
and in the error a failed build reports (`mask_error`).

They are still build args: a `RUN` that uses one records it in the image's history, for
whoever can pull the image to read (the README says when to use them). BuildKit's secret
mounts would not, but they need a client session that hookbuild does not open.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.config import Config
from builder.errors import BuildFailed, HookbuildError
from builder.redact import redact


def for_plan(config: Config, forge: str, repository: str, image: str) -> Mapping[str, str]:
    """The secret build args of this repository's `image`, from the worker's config."""
    configured = config.repository(forge, repository)
    if configured is None:
        return {}
    for candidate in configured.all_images:
        if candidate.name == image:
            return candidate.secret_build_args or {}
    return {}


def mask_error(exc: HookbuildError, secrets: tuple[str, ...]) -> None:
    """Mask every secret in the error's message (and a failed build's reason and log
    tail), in place: it goes on to the build's record, its log and the service log."""
    if not secrets:
        return
    exc.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
    if isinstance(exc, BuildFailed):
        exc.reason = redact(exc.reason, secrets)
        exc.log_tail = [redact(line, secrets) for line in exc.log_tail]
