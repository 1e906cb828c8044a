"""The config file: its model, and loading it with every problem reported at its location.

`load_config` reads YAML with `yaml.safe_load`, expands `${VAR}` references from the given
environment, and validates with pydantic, turning each error into a `ConfigProblem` such as
`repositories[0].rules[1].branch: regex /(a/ is refused: ...`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from builder.envsubst import expand, location_of
from builder.errors import ConfigError, ConfigProblem
from builder.patterns import PatternError, RefPattern
from builder.templates import TemplateError, check_template

FORGES = ("github", "gitlab", "bitbucket", "bitbucket-server", "gitea", "forgejo", "gogs")
Forge = Literal["github", "gitlab", "bitbucket", "bitbucket-server", "gitea", "forgejo", "gogs"]

# Basic-auth user names that each forge accepts with an access token as the password.
TOKEN_USERNAMES: Mapping[str, str] = {
    "github": "x-access-token",
    "gitlab": "oauth2",
    "bitbucket": "x-token-auth",
    "bitbucket-server": "x-token-auth",
    "gitea": "oauth2",
    "forgejo": "oauth2",
    "gogs": "oauth2",
}

# Where a hosted forge serves a repository when the config gives no clone_url and there is
# no payload to read one from (trigger URLs, `hookbuild build`).
HOSTED_CLONE_URLS: Mapping[str, str] = {
    "github": "https://github.com/{name}.git",
    "gitlab": "https://gitlab.com/{name}.git",
    "bitbucket": "https://bitbucket.org/{name}.git",
}


def _scalar_to_str(value: Any) -> Any:
    """YAML reads `1.0` and `true` as numbers and booleans; build args are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


BuildArgs = dict[str, Annotated[str, BeforeValidator(_scalar_to_str)]]


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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    listen: str = "0.0.0.0:8080"
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class RedisConfig(_Model):
    url: str | None = None  # None: `hookbuild up` runs a private redis-server


class RegistryConfig(_Model):
    host: str = Field(min_length=1)
    username: str | None = None
    password: str | None = None
    insecure: bool = False

    @property
    def has_credentials(self) -> bool:
        return bool(self.username)


class RuleConfig(_Model):
    branch: str | None = None
    tag: str | None = None
    tags: list[str] = Field(default_factory=lambda: ["{sourceref}"], min_length=1)
    dockerfile: RepoPath | None = None
    context: RepoPath | None = None
    build_args: BuildArgs | None = None

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
    def _templates_known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        source = info.data.get("branch") or info.data.get("tag")
        try:
            pattern = RefPattern.parse(source) if source else RefPattern.parse("")
        except PatternError:
            return value  # already reported on the pattern's own field
        errors = []
        for index, template in enumerate(value):
            try:
                check_template(template, pattern.group_count, pattern.group_names)
            except TemplateError as exc:
                errors.append(f"[{index}] {exc}")
        if errors:
            # One "[index] message" line per template; _problems_from moves the index into
            # the location (`rules[1].tags[2]`).
            raise ValueError("\n".join(errors))
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RuleConfig:
        if self.branch is not None and self.tag is not None:
            raise ValueError("a rule has either `branch:` or `tag:`, not both")
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

    def describe(self) -> str:
        if self.branch is not None:
            return f"branch: {self.branch}"
        return f"tag: {self.tag}" if self.tag is not None else "any ref"


class RepositoryConfig(_Model):
    name: str = Field(min_length=1)
    forge: Forge
    secret: str = Field(min_length=1)
    signing_token: str | None = None  # GitLab's signing token, when it differs from `secret`
    trigger_token: str | None = None  # enables POST /trigger/{name}/{token}
    clone_url: str | None = None
    clone_username: str | None = None
    clone_token: str | None = None
    image: str = Field(min_length=1, pattern=r"^[a-z0-9]+([._:/-][a-zA-Z0-9]+)*$")
    dockerfile: RepoPath = "Dockerfile"
    context: RepoPath = "."
    build_args: BuildArgs = Field(default_factory=dict)
    timeout: int = Field(default=3600, gt=0)
    rules: list[RuleConfig] = Field(min_length=1)

    @field_validator("image")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        last = value.rsplit("/", 1)[-1]
        if ":" in last or "@" in last:
            raise ValueError("give the image without a tag; rules give the tags")
        return value

    @property
    def default_clone_url(self) -> str | None:
        """The config's clone_url, else the hosted forge's, else None (self-hosted)."""
        if self.clone_url:
            return self.clone_url
        template = HOSTED_CLONE_URLS.get(self.forge)
        return template.format(name=self.name) if template else None

    @property
    def clone_credentials(self) -> tuple[str, str] | None:
        if not self.clone_token:
            return None
        return (self.clone_username or TOKEN_USERNAMES[self.forge], self.clone_token)


def _default_state_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME", "/root"), ".local/state"
    )
    return os.path.join(base, "hookbuild")


class Config(_Model):
    server: ServerConfig = Field(default_factory=ServerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    workers: int = Field(default=2, ge=1, le=64)
    state_dir: str | None = None
    registries: list[RegistryConfig] = Field(default_factory=list)
    repositories: list[RepositoryConfig] = Field(default_factory=list)

    _by_forge_and_name: dict[tuple[str, str], RepositoryConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_mean_defaults(cls, data: Any) -> Any:
        # `redis:` followed only by comments reads as null in YAML; it means "defaults".
        if isinstance(data, dict):
            empty: dict[str, Any] = {
                "server": {},
                "redis": {},
                "registries": [],
                "repositories": [],
            }
            data = {k: (empty[k] if v is None and k in empty else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _index(self) -> Config:
        # Built once: the receiver looks a repository up on every delivery.
        seen: dict[tuple[str, str], int] = {}
        for index, repository in enumerate(self.repositories):
            key = (repository.forge, repository.name)
            if key in seen:
                raise ValueError(
                    f"repositories[{index}] repeats {repository.forge} repository "
                    f"{repository.name!r} (first at repositories[{seen[key]}])"
                )
            seen[key] = index
            self._by_forge_and_name[key] = repository
        return self

    def repository(self, forge: str, name: str) -> RepositoryConfig | None:
        return self._by_forge_and_name.get((forge, name))

    def repository_named(self, name: str) -> RepositoryConfig | None:
        return next((r for r in self.repositories if r.name == name), None)

    def registry_for(self, image: str) -> RegistryConfig | None:
        host = image.split("/", 1)[0]
        return next((r for r in self.registries if r.host == host), None)


def parse_config(text: str, environ: Mapping[str, str], source: str = "") -> Config:
    """Validate YAML text; raise `ConfigError` listing every problem with its location."""
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(where, f"not valid YAML: {problem}")], source) from exc
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError([ConfigProblem("", "the top level must be a mapping")], source)

    problems: list[ConfigProblem] = []
    tree = expand(tree, environ, problems)
    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        # A value whose variable is unset was already reported; its emptiness is no news.
        unset = {p.location for p in problems}
        problems.extend(p for p in _problems_from(exc) if p.location not in unset)
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    if config.state_dir is None:
        config = config.model_copy(update={"state_dir": _default_state_dir(environ)})
    return config


def load_config(path: str | Path, environ: Mapping[str, str]) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", f"cannot read {path}: {exc.strerror}")], str(path)
        ) from exc
    return parse_config(text, environ, str(path))


def _problems_from(error: ValidationError) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        path = tuple(p for p in item["loc"] if isinstance(p, str | int))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}"
        elif item["type"] == "literal_error" and path and path[-1] == "forge":
            message = f"unknown forge {item.get('input')!r}; expected one of {', '.join(FORGES)}"
        for line in message.split("\n"):
            index, sep, rest = line.partition("] ")
            if line.startswith("[") and sep and index[1:].isdigit():
                problems.append(ConfigProblem(location_of((*path, int(index[1:]))), rest))
            else:
                problems.append(ConfigProblem(location_of(path), line))
    return problems
