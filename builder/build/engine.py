"""The seam for the build backend: what the pipeline, the publisher, the worker's prune and
/healthz need of an engine. `builder.build.docker.engine.DockerEngine` is the one we have;
another backend is another class with these methods.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from builder.logsink import LineSink


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str

    def as_auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True)
class BuildRequest:
    """One image to build. `context`: a directory, or a tar file of the context
    (builder/build/streamcontext.py), in which `dockerfile` is then a name. `scratch`: a
    directory outside a context directory, for a labelled copy of the Dockerfile. `network`:
    the RUN steps' (builder.buildnetwork): `default`, the engine's, or `none`."""

    context: Path
    dockerfile: Path | str
    tag: str
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    target: str | None = None
    cache_from: Sequence[str] = ()
    scratch: Path | None = None
    network: str = "default"


class BuildEngine(Protocol):
    """Builds images and moves them to and from registries. Each method raises a
    `HookbuildError` (`EngineError`, `BuildFailed`, `RegistryError`), never its library's."""

    address: str | None  # where the engine is, for errors to name

    @property
    def has_buildkit(self) -> bool:
        """Can it build with BuildKit without a client session?"""
        ...

    @property
    def has_bridge(self) -> bool:
        """Has it a network for RUN steps by default?"""
        ...

    def ping(self) -> None: ...

    def describe(self) -> str:
        """What it is, for the log: `Docker 27.3.1, API 1.47`; never raises."""
        ...

    def close(self) -> None: ...

    def build_classic(self, request: BuildRequest, on_line: LineSink) -> str:
        """Build with the classic builder; return the image id, or raise `BuildFailed`."""
        ...

    def build_buildkit(self, request: BuildRequest, on_line: LineSink) -> str:
        """Build with BuildKit, which sets the labels as it writes the image."""
        ...

    def tag(self, image_id: str, repository: str, tag: str) -> None: ...

    def push(self, repository: str, tag: str, auth: RegistryAuth | None, on_line: LineSink) -> str:
        """Push one tag; return the manifest digest the registry reported."""
        ...

    def has_image(self, reference: str) -> bool: ...

    def has_image_of(self, repository: str) -> bool:
        """Does the engine hold any image of this repository (any tag)?"""
        ...

    def pull(self, repository: str, tag: str, auth: RegistryAuth | None) -> bool:
        """Pull one image; False (not an error) when the registry does not have it."""
        ...

    def pull_image(self, reference: str, auth: RegistryAuth | None) -> None:
        """Pull `reference`; raise `RegistryError`, transient when worth another try."""
        ...

    def prune(
        self,
        label: str,
        budget_bytes: int,
        min_age_seconds: int,
        unlabelled: Collection[str] = (),
    ) -> list[str]:
        """Remove what builds left behind, and labelled images over `budget_bytes`."""
        ...
