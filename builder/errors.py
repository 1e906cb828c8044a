"""The one exception hierarchy of hookbuild.

Catch `HookbuildError` to catch everything hookbuild raises on purpose; its `transient` says
whether another try may do (builder/build/retry.py). Errors carry the data a user needs
(where in the config, which build step, the tail of the log). One translator per foreign
library words its exceptions as ours, the way docker-py's
`create_api_error_from_http_exception` does for HTTP errors: `from_git_error` (GitPython,
called from builder/build/source.py) and `from_docker_error` (docker-py and requests, called
from builder/build/docker/errors.py, which knows their exception types; this module imports
neither library), and `runners.errors.from_redis_error` (redis-py) on the runners' side.

Each package keeps its errors in one module: this one for builder/, webhooks/errors.py for
the HTTP side (each with its status), runners/errors.py for the store and the CLI's client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from builder.engineaddress import unreachable_reason
from builder.redact import redact


class HookbuildError(Exception):
    """Catch this to catch all that hookbuild raises on purpose. `transient`: worth another
    try (a registry's 5xx, a refused connection), as builder/retry.py does."""

    transient: bool = False


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file, and where: `repositories[0].rules[1].branch`."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(HookbuildError):
    """A config file that cannot be used; lists every problem found, each with its location."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head}{len(self.problems)} config error(s)\n{lines}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[ConfigProblem], str]]:
        # Pickled whole (runners/configload.py), not rebuilt from its message.
        return (ConfigError, (self.problems, self.source))


class UnsafePathError(HookbuildError):
    """A dockerfile or context path that would leave the checkout."""


class SourceError(HookbuildError):
    """Fetching the pushed commit failed (network, auth, unknown commit)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class BuildFailed(HookbuildError):
    """`docker build` reported an error; `log_tail` holds the failing step's output."""

    def __init__(self, reason: str, log_tail: Sequence[str] = ()) -> None:
        self.reason = reason
        self.log_tail = list(log_tail)
        super().__init__(reason)


class EngineError(HookbuildError):
    """The Docker engine could not be reached or refused a request."""


class EngineUnreachable(EngineError):
    """No Docker engine answers at `address` (`unix:///var/run/docker.sock`), for `reason`
    (`no such socket`)."""

    def __init__(self, message: str, address: str | None, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(message)

    def __reduce__(self) -> tuple[type[EngineUnreachable], tuple[str, str | None, str]]:
        return (EngineUnreachable, (str(self), self.address, self.reason))


def engine_unreachable(action: str, address: str | None, reason: str) -> EngineUnreachable:
    """`docker build: the Docker engine is not reachable at unix:///x.sock: no such socket`;
    without `action` when reaching it was all there was to do."""
    where = f" at {redact(address)}" if address else ""
    head = f"{action}: " if action else ""
    message = f"{head}the Docker engine is not reachable{where}: {redact(reason)}"
    return EngineUnreachable(message, address, reason)


class ReleaseTagTaken(HookbuildError):
    """A release tag already points at another image and the rule does not allow overwrite."""


class RetagFailed(HookbuildError):
    """The registry could not be asked to tag; the engine's push does it instead."""


class TriggerRequestError(HookbuildError):
    """A trigger body or `hookbuild build` arguments that name no usable ref."""


class RegistryError(HookbuildError):
    """A push to the registry failed (down, refused, unauthorized)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


def from_git_error(exc: Exception, action: str) -> SourceError:
    """Translate a GitPython error into a `SourceError` whose text holds no credentials."""
    stderr = getattr(exc, "stderr", "") or ""
    detail = " ".join(str(stderr).split()) or str(exc)
    detail = redact(detail)
    transient = any(
        word in detail.lower()
        for word in ("could not resolve", "connection refused", "timed out", "unable to access")
    )
    return SourceError(f"{action} failed: {detail}", transient=transient)


def from_docker_error(exc: Exception, action: str, address: str | None = None) -> EngineError:
    """Translate a docker-py or connection error into an `EngineError`; one that never
    reached the engine at `address` (its DOCKER_HOST) into an `EngineUnreachable`."""
    reason = unreachable_reason(exc)
    if reason is not None:
        return engine_unreachable(action, address, reason)
    explanation = getattr(exc, "explanation", None) or str(exc)
    return EngineError(f"{action}: {redact(explanation)}")


def engine_gone(action: str, why: str, address: str | None = None) -> EngineError:
    """The engine went away during `action` (stopped, crashed): its error, not the step's
    that it killed on its way out (`returned a non-zero code: 137`)."""
    return engine_unreachable(action, address, f"{why}; it went away during the build")
