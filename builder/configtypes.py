"""Field types shared by the config models: strict models, build args, repository paths."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _scalar_to_str(value: Any) -> Any:
    """YAML reads `1.0` and `true` as numbers and booleans; build args are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


BuildArgs = dict[str, Annotated[str, BeforeValidator(_scalar_to_str)]]


def _not_blank(value: str) -> str:
    """A secret of spaces (an unset variable, a stray quote) would let anyone in."""
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


# A secret, token or password: never empty or only whitespace.
Secret = Annotated[str, AfterValidator(_not_blank)]
# Build args whose values never go into a plan, a record or a log (builder.secretargs).
SecretBuildArgs = dict[
    str, Annotated[str, BeforeValidator(_scalar_to_str), AfterValidator(_not_blank)]
]


def _inside_repository(value: str | None) -> str | None:
    """Checked again at build time, where symlinks in the checkout are resolved too."""
    if value is None:
        return value
    if value.startswith("/"):
        raise ValueError(f"{value!r} must be relative to the repository root")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} may not contain '..'")
    return value


RepoPath = Annotated[str, AfterValidator(_inside_repository)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Labels = dict[str, Annotated[str, BeforeValidator(_scalar_to_str)]]
Globs = list[Annotated[str, Field(min_length=1)]]
# The engine's builder for an image (builder/build/buildstep.py); `auto` picks one per
# build (builder.builderchoice).
Builder = Literal["auto", "buildkit", "classic"]
# The network a build's RUN steps have: the engine's `default` (its bridge, as `docker
# build` gives), or `none`, for builds of code that should reach nothing (builder.buildnetwork).
Network = Literal["default", "none"]
