"""Which of the engine's builders builds an image.

`builder: auto`, the default, means BuildKit wherever hookbuild can drive it. BuildKit is
what `docker build` has used since Docker 23: labels without a step of their own, stages
in parallel, unused stages skipped, `RUN --mount=type=cache`. The classic builder builds
instead on an engine without BuildKit, and for a Dockerfile that names its own frontend
(`# syntax=`, or the `BUILDKIT_SYNTAX` build arg). BuildKit would run that frontend image
as a container of its own, and hookbuild, which drives BuildKit without a client session
(builder/build/docker/engine.py), has not seen that work. The classic builder reads such a
Dockerfile as it always did: the directive is a comment to it.
"""

from __future__ import annotations

from typing import Literal

Chosen = Literal["buildkit", "classic"]


def choose_builder(
    requested: str, engine_has_buildkit: bool, frontend: str | None
) -> tuple[Chosen, str | None]:
    """The builder for a build whose config asks for `requested`, and, when `auto` did not
    choose BuildKit, why not (for the build log)."""
    if requested == "classic":
        return "classic", None
    if requested == "buildkit":
        return "buildkit", None
    if not engine_has_buildkit:
        return "classic", "the engine has no BuildKit"
    if frontend:
        return "classic", (
            f"the Dockerfile names its own frontend, {frontend}, which hookbuild does not "
            "run BuildKit with unless `builder: buildkit` says so"
        )
    return "buildkit", None
