"""The build backend this installation runs: the one place that names the concrete engine.
Everything else takes a `builder.build.engine.BuildEngine`."""

from __future__ import annotations

from collections.abc import Mapping

from builder.build.docker.engine import DockerEngine
from builder.build.engine import BuildEngine
from builder.logsink import DEFAULT_MAX_LINE_CHARS


def connect_engine(
    environ: Mapping[str, str], timeout: int = 600, max_line: int = DEFAULT_MAX_LINE_CHARS
) -> BuildEngine:
    """The engine `environ` names (`DOCKER_HOST`, ...), answering; else `EngineError`."""
    return DockerEngine.from_environment(environ, timeout=timeout, max_line=max_line)
