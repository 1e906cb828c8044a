"""The build step, two ways: BuildKit, or the classic builder. Chosen once a build
(builder.builderchoice), the step then answers every question where the two differ, so
the pipeline never asks which it has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from builder.build.engine import BuildEngine, BuildRequest
from builder.builderchoice import Chosen, choose_builder
from builder.logsink import LineSink


class BuildStep(Protocol):
    name: str  # "buildkit" | "classic", as the config spells them
    describe: str  # for `==> building ...`: "" or " with BuildKit"

    def labels_for_dockerfile(self, labels: Mapping[str, str]) -> Mapping[str, str]:
        """The labels to write into the Dockerfile the context carries."""
        ...

    def labels_for_build(
        self, labels: Mapping[str, str], left: Mapping[str, str]
    ) -> Mapping[str, str]:
        """The labels to ask the engine for, `left` being what the Dockerfile could not take."""
        ...

    def must_pull(self, has_credentials: bool) -> bool:
        """Must hookbuild pull a base image the engine lacks, before the build?"""
        ...

    def frontend_to_pull(self, frontend: str | None) -> str | None:
        """The Dockerfile's frontend image (`# syntax=`), when this builder runs it."""
        ...

    def build(self, engine: BuildEngine, request: BuildRequest, on_line: LineSink) -> str:
        """Build; return the image id or raise `BuildFailed`."""
        ...


class BuildKitStep:
    """BuildKit sets build labels as it writes the image, and without a client session it
    pulls nothing itself: every base image and the frontend are pulled for it."""

    name = "buildkit"
    describe = " with BuildKit"

    def labels_for_dockerfile(self, labels: Mapping[str, str]) -> Mapping[str, str]:
        return {}

    def labels_for_build(
        self, labels: Mapping[str, str], left: Mapping[str, str]
    ) -> Mapping[str, str]:
        return labels

    def must_pull(self, has_credentials: bool) -> bool:
        return True

    def frontend_to_pull(self, frontend: str | None) -> str | None:
        return frontend

    def build(self, engine: BuildEngine, request: BuildRequest, on_line: LineSink) -> str:
        return engine.build_buildkit(request, on_line)


class ClassicStep:
    """The classic builder spends a step on each build label: they go into the Dockerfile,
    one step for all. It pulls base images itself, as `docker build` does, but knows nothing
    of the config's credentials: those in such a registry are pulled for it."""

    name = "classic"
    describe = ""

    def labels_for_dockerfile(self, labels: Mapping[str, str]) -> Mapping[str, str]:
        return labels

    def labels_for_build(
        self, labels: Mapping[str, str], left: Mapping[str, str]
    ) -> Mapping[str, str]:
        return left

    def must_pull(self, has_credentials: bool) -> bool:
        return has_credentials

    def frontend_to_pull(self, frontend: str | None) -> str | None:
        return None  # a `# syntax=` line is a comment to it

    def build(self, engine: BuildEngine, request: BuildRequest, on_line: LineSink) -> str:
        return engine.build_classic(request, on_line)


STEPS: dict[Chosen, BuildStep] = {"buildkit": BuildKitStep(), "classic": ClassicStep()}


def choose_step(
    wanted: str, engine_has_buildkit: bool, frontend: str | None
) -> tuple[BuildStep, str | None]:
    """The step for the config's `builder:`, and why not BuildKit when `auto` fell back."""
    name, why = choose_builder(wanted, engine_has_buildkit, frontend)
    return STEPS[name], why
