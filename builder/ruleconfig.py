"""Config models for what gets built: images (one or several per repository) and their rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from builder.configtypes import (
    BuildArgs,
    Builder,
    Globs,
    Labels,
    Network,
    RepoPath,
    SecretBuildArgs,
    StrictModel,
)
from builder.imageref import image_name_problem, tag_problem
from builder.patterns import PatternError, RefPattern
from builder.tags.templates import TemplateError, check_template, has_placeholder


def check_image_name(value: str) -> str:
    last = value.rsplit("/", 1)[-1]
    if ":" in last or "@" in last:
        raise ValueError("give the image without a tag; rules give the tags")
    if problem := image_name_problem(value):
        raise ValueError(problem)
    return value


class FlavorConfig(StrictModel):
    """metadata-action's flavor: a prefix and a suffix on every tag of the rule."""

    prefix: str = ""
    suffix: str = ""

    @field_validator("prefix", "suffix")
    @classmethod
    def _tag_characters(cls, value: str, info: ValidationInfo) -> str:
        # Written out like a literal tag: a character no tag may have would be replaced in
        # every tag of the rule (`v 1` -> `v-1`), and a leading '.' or '-' dropped.
        name = info.field_name or "prefix"
        if has_placeholder(value):
            return value  # `{date}` is filled in at build time, then made a valid tag
        if value and (problem := tag_problem(value, name, leading=name == "prefix")):
            raise ValueError(problem)
        return value


class RuleConfig(StrictModel):
    branch: str | None = None
    tag: str | None = None
    # Default: ["{sourceref}"]; with `semver: true`, none beyond the semver ones.
    tags: list[str] | None = None
    semver: bool = False
    latest: Literal["auto"] | bool = "auto"
    overwrite: bool = False
    flavor: FlavorConfig | None = None
    dockerfile: RepoPath | None = None
    context: RepoPath | None = None
    build_args: BuildArgs | None = None
    target: str | None = None
    labels: Labels | None = None
    paths: Globs | None = None
    ignore_paths: Globs | None = None
    # superseded: a newer push of the same image and ref cancels this build (default for
    # branches); never: every push builds (default for tags).
    cancel: Literal["superseded", "never"] | None = None
    timeout: int | None = Field(default=None, gt=0)  # seconds; default: the repository's

    _pattern: RefPattern | None = PrivateAttr(default=None)

    @field_validator("branch", "tag")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            if not value:
                raise ValueError("must not be empty (leave it out to match any name)")
            try:
                RefPattern.parse(value)
            except PatternError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("tags")
    @classmethod
    def _templates_known(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return value
        source = info.data.get("branch") or info.data.get("tag")
        try:
            pattern = RefPattern.parse(source) if source else RefPattern.parse("")
        except PatternError:
            return value  # already reported on the pattern's own field
        errors = []
        for index, template in enumerate(value):
            try:
                check_template(template, pattern.group_count, pattern.group_names)
                datetime(2000, 1, 2, tzinfo=UTC).strftime(template)  # a broken % is caught here
                if not has_placeholder(template) and (problem := tag_problem(template)):
                    # A computed tag is made valid at build time (`feature/x` ->
                    # `feature-x`); one written out is pushed as written, or it is a typo.
                    raise ValueError(problem)
            except (TemplateError, ValueError) as exc:
                errors.append(f"[{index}] {exc}")
        if errors:
            # One "[index] message" line per template; configerrors.problems_from moves the
            # index into the location (`rules[1].tags[2]`).
            raise ValueError("\n".join(errors))
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RuleConfig:
        if self.branch is not None and self.tag is not None:
            raise ValueError("a rule has either `branch:` or `tag:`, not both")
        if self.semver and self.branch is not None:
            raise ValueError("`semver: true` is for tag rules: branches have no versions")
        if self.tags == [] and not self.semver:
            raise ValueError("`tags: []` gives no tag; leave `tags` out for the default")
        source = self.branch if self.branch is not None else self.tag
        self._pattern = RefPattern.parse(source) if source is not None else None
        return self

    @property
    def source_type(self) -> Literal["branch", "tag", "any"]:
        if self.branch is not None:
            return "branch"
        return "tag" if self.tag is not None else "any"

    @property
    def pattern(self) -> RefPattern | None:
        return self._pattern

    @property
    def tag_templates(self) -> list[str]:
        if self.tags is not None:
            return self.tags
        return [] if self.semver else ["{sourceref}"]

    def describe(self) -> str:
        if self.branch is not None:
            return f"branch: {self.branch}"
        return f"tag: {self.tag}" if self.tag is not None else "any ref"


class ImageConfig(StrictModel):
    """One image built from the repository; a monorepo lists several under `images:`."""

    name: str = Field(min_length=1)
    dockerfile: RepoPath | None = None
    context: RepoPath | None = None
    build_args: BuildArgs | None = None
    # Looked up by the worker at build time, merged over the repository's.
    secret_build_args: SecretBuildArgs | None = None
    target: str | None = None
    labels: Labels | None = None
    oci_labels: bool | None = None  # None: the repository's
    builder: Builder | None = None  # None: the repository's
    network: Network | None = None  # None: the repository's
    paths: Globs = Field(default_factory=list)
    ignore_paths: Globs = Field(default_factory=list)
    rules: list[RuleConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        return check_image_name(value)
