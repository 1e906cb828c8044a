"""The config file: its model, and loading it with every problem reported at its location.

`load_config` reads YAML with PyYAML's safe loader, expands `${VAR}` references from the given
environment, and validates with pydantic, turning each error into a `ConfigProblem` such as
`repositories[0].rules[1].branch: regex /(a/ is refused: ...`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from builder.cloneurl import clone_host_entry, url_problem
from builder.configerrors import problems_from
from builder.configtypes import (
    BuildArgs,
    Builder,
    Globs,
    Labels,
    Network,
    RepoPath,
    Secret,
    SecretBuildArgs,
    StrictModel,
)
from builder.envsubst import expand
from builder.errors import ConfigError, ConfigProblem
from builder.forge import ForgeFacts, Forges, forge_problem
from builder.ruleconfig import ImageConfig, RuleConfig, check_image_name
from builder.yamlaliases import alias_problem

CloneScheme = Literal["https", "http", "ssh", "git"]


def _https_only() -> list[CloneScheme]:
    return ["https"]


class ServerConfig(StrictModel):
    listen: str = "0.0.0.0:8080"
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Bearer token for what changes state (cancel, rebuild). None: those endpoints are off.
    token: Secret | None = Field(default=None, min_length=16)
    # Reads (builds, logs, events) open to all, or only with the token.
    public: bool = True
    # Serving processes sharing the port: more webhooks a second, ~75 MB each.
    processes: int = Field(default=1, ge=1, le=64)
    # Slow or idle clients (slowloris): a request's headers must be complete this long after
    # it starts, its body read this long after that, or the connection is closed.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Open connections per serving process; past it new ones get a 503 and are closed, so
    # the process never runs out of descriptors.
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    # A request's line and headers together (the body has max_body_bytes): 431 past it.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

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


class RedisConfig(StrictModel):
    url: str | None = None  # None: `hookbuild up` runs a private redis-server


class RegistryConfig(StrictModel):
    host: str = Field(min_length=1)
    username: str | None = None
    password: str | None = None
    insecure: bool = False

    @property
    def has_credentials(self) -> bool:
        return bool(self.username)


class RepositoryConfig(StrictModel):
    name: str = Field(min_length=1)
    forge: str  # a registered forge's name (builder/forge.py)
    secret: Secret = Field(min_length=1)
    signing_token: Secret | None = None  # GitLab's signing token, when it differs from `secret`
    trigger_token: Secret | None = None  # enables POST /trigger/{name}/{token}
    clone_url: str | None = None  # trusted as written; else the payload's, if allowed below
    # Where a payload's clone URL may point: `host` (the scheme's default port) or
    # `host:port`. Default: the hosted forge's (github.com, gitlab.com, bitbucket.org);
    # a self-hosted forge's repository needs this, or `clone_url`.
    clone_hosts: list[str] | None = Field(default=None, min_length=1)
    # The git transports a payload's clone URL may use.
    clone_schemes: list[CloneScheme] = Field(default_factory=_https_only, min_length=1)
    clone_username: str | None = None
    clone_token: Secret | None = None
    default_branch: str | None = None  # default: the payload's, else "main"
    latest_from: Literal["branch", "tags"] = "branch"
    timeout: int = Field(default=3600, gt=0)  # seconds a build may take; a rule may override
    # One image: `image` and `rules` (with the build settings below as its own)...
    image: str | None = Field(default=None, min_length=1)
    rules: list[RuleConfig] | None = Field(default=None, min_length=1)
    # ...or several (monorepos), each with its own settings and rules; the settings below
    # are then every image's defaults.
    images: list[ImageConfig] | None = Field(default=None, min_length=1)
    dockerfile: RepoPath = "Dockerfile"
    context: RepoPath = "."
    build_args: BuildArgs = Field(default_factory=dict)
    # Never in a plan, a record or a log: the worker adds them at build time (builder.secretargs).
    secret_build_args: SecretBuildArgs = Field(default_factory=dict)
    target: str | None = None
    labels: Labels = Field(default_factory=dict)
    # hookbuild's own OCI labels (source, revision, created, ...). Off, an image gets only
    # `labels:`, and with none of those its build has no label step (0.1-0.17 s here).
    oci_labels: bool = True
    # The engine's builder: `buildkit` (steps run in parallel where they can, labels set
    # without a step of their own, RUN --mount=type=cache), `classic` (its legacy builder,
    # each step a container), or `auto`: BuildKit wherever hookbuild can drive it
    # (builder/builderchoice.py).
    builder: Builder = "auto"
    # RUN steps' network: the engine's `default`, or `none` (nothing reachable, not even
    # DNS), for repositories whose Dockerfiles you do not trust to fetch only what they say.
    network: Network = "default"
    paths: Globs = Field(default_factory=list)
    ignore_paths: Globs = Field(default_factory=list)

    _forge: ForgeFacts = PrivateAttr()

    @field_validator("forge", mode="before")
    @classmethod
    def _registered(cls, value: Any, info: ValidationInfo) -> Any:
        if problem := forge_problem(value, _forges(info)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _keep_forge_facts(self, info: ValidationInfo) -> RepositoryConfig:
        self._forge = _forges(info)[self.forge]
        return self

    @field_validator("clone_hosts")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [clone_host_entry(entry) for entry in value]

    @field_validator("clone_url")
    @classmethod
    def _not_an_option(cls, value: str | None) -> str | None:
        # Trusted, but git must never read it as an option (every call also has `--`).
        if value is not None and (not value.strip() or value.startswith("-")):
            raise ValueError(f"{value!r} is not a URL or path")
        return value

    @field_validator("image")
    @classmethod
    def _no_tag(cls, value: str | None) -> str | None:
        return check_image_name(value) if value is not None else value

    @model_validator(mode="after")
    def _image_or_images(self) -> RepositoryConfig:
        if self.images is not None and (self.image is not None or self.rules is not None):
            raise ValueError("give either `image` with `rules`, or `images`, not both")
        if self.images is None and (self.image is None or self.rules is None):
            raise ValueError("give `image` with `rules`, or `images` (each with its rules)")
        return self

    @cached_property
    def all_images(self) -> list[ImageConfig]:
        """Every image, with the repository's settings filled in where an image has none.
        Made once: the receiver decides on every delivery (bench/intake.py)."""
        if self.images is None:
            assert self.image is not None and self.rules is not None  # checked above
            return [
                ImageConfig(
                    name=self.image,
                    dockerfile=self.dockerfile,
                    context=self.context,
                    build_args=self.build_args,
                    secret_build_args=self.secret_build_args,
                    target=self.target,
                    labels=self.labels,
                    oci_labels=self.oci_labels,
                    builder=self.builder,
                    network=self.network,
                    paths=self.paths,
                    ignore_paths=self.ignore_paths,
                    rules=self.rules,
                )
            ]
        return [
            image.model_copy(
                update={
                    "dockerfile": image.dockerfile or self.dockerfile,
                    "context": image.context or self.context,
                    "build_args": {**self.build_args, **(image.build_args or {})},
                    "secret_build_args": {
                        **self.secret_build_args,
                        **(image.secret_build_args or {}),
                    },
                    "target": image.target or self.target,
                    "labels": {**self.labels, **(image.labels or {})},
                    "oci_labels": (
                        self.oci_labels if image.oci_labels is None else image.oci_labels
                    ),
                    "builder": image.builder or self.builder,
                    "network": image.network or self.network,
                    "paths": image.paths or self.paths,
                    "ignore_paths": image.ignore_paths or self.ignore_paths,
                }
            )
            for image in self.images
        ]

    @property
    def forge_facts(self) -> ForgeFacts:
        """What this repository's forge driver says of the forge (builder/forge.py)."""
        return self._forge

    @property
    def default_clone_url(self) -> str | None:
        """The config's clone_url, else the hosted forge's, else None (self-hosted)."""
        if self.clone_url:
            return self.clone_url
        return self._forge.clone_url(self.name)

    @cached_property
    def allowed_clone_hosts(self) -> frozenset[str]:
        """The hosts a payload's clone URL may name (made once: checked per delivery)."""
        if self.clone_hosts is not None:
            return frozenset(self.clone_hosts)
        return frozenset(self._forge.hosted_clone_hosts)

    @property
    def payload_clone_url_example(self) -> str | None:
        """A clone URL a payload could give and this repository would take (for `preview`,
        which has no payload); None when no payload's would be taken."""
        hosts = sorted(self.allowed_clone_hosts)
        return f"{self.clone_schemes[0]}://{hosts[0]}/{self.name}.git" if hosts else None

    def clone_url_problem(self, url: str) -> str | None:
        """Why `url` may not be fetched for this repository; None when it may: the config's
        own clone_url (or the hosted forge's default), or a URL on an allowed host with an
        allowed scheme."""
        if url in (self.clone_url, self.default_clone_url):
            return None
        return url_problem(url, self.allowed_clone_hosts, self.clone_schemes)

    @property
    def clone_credentials(self) -> tuple[str, str] | None:
        if not self.clone_token:
            return None
        return (self.clone_username or self._forge.token_username, self.clone_token)


def _forges(info: ValidationInfo) -> Mapping[str, ForgeFacts]:
    forges = info.context.get("forges") if isinstance(info.context, dict) else None
    if forges is None:  # a caller's mistake, not the config's: raised as it is
        raise TypeError("a config is validated against the forges: parse_config(..., forges=)")
    return forges  # type: ignore[no-any-return]


def _default_state_dir(environ: Mapping[str, str]) -> str:
    """$HOOKBUILD_STATE_DIR (scripts/up sets it, so that its dockerd, registry and
    hookbuild share one directory), else $XDG_STATE_HOME/hookbuild, else
    ~/.local/state/hookbuild."""
    if environ.get("HOOKBUILD_STATE_DIR"):
        return environ["HOOKBUILD_STATE_DIR"]
    base = environ.get("XDG_STATE_HOME") or os.path.join(
        environ.get("HOME", "/root"), ".local/state"
    )
    return os.path.join(base, "hookbuild")


class RetryConfig(StrictModel):
    # Attempts at a fetch or a push that failed for a transient reason (a registry 5xx or a
    # refused connection, a network error); a build's own failure is never retried.
    transient: int = Field(default=3, ge=1, le=20)
    backoff_seconds: float = Field(default=2.0, ge=0)  # doubles after each attempt
    # Times a build whose worker died (killed, crashed) is started again; 0: it fails.
    lost_builds: int = Field(default=0, ge=0, le=10)


class DiskConfig(StrictModel):
    # Images hookbuild built, on each worker's engine, beyond which the oldest are removed
    # after a build (stopped containers and dangling layers always are).
    image_budget_mb: int = Field(default=20_480, ge=0)
    # Cached git mirrors, beyond which the least recently used are removed.
    mirror_budget_mb: int = Field(default=5_120, ge=0)
    # Containers and images younger than this are never pruned: builds running beside
    # each other on one engine keep their layers. Keep it above your longest build.
    min_age_seconds: int = Field(default=7_200, ge=0)


class LogsConfig(StrictModel):
    # A build's log is cut past this many characters (the log says where; the build goes
    # on, and its record says the log was cut).
    max_bytes: int = Field(default=50 * 1024 * 1024, ge=64 * 1024)
    # A log line is cut past this many characters (bytes, for ASCII), the cut said in it.
    max_line_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)

    @model_validator(mode="after")
    def _line_within_log(self) -> LogsConfig:
        if self.max_line_bytes > self.max_bytes:
            raise ValueError("logs.max_line_bytes must not be more than logs.max_bytes")
        return self


class Config(StrictModel):
    server: ServerConfig = Field(default_factory=ServerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    workers: int = Field(default=2, ge=1, le=64)
    # Builds of one repository that run (or wait on the queue) at once; more wait their turn
    # in the repository's own line, so one busy repository cannot starve the others.
    max_running_per_repository: int = Field(default=2, ge=1, le=64)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    disk: DiskConfig = Field(default_factory=DiskConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    # Finished builds (records and logs) are kept this long.
    retention_days: float = Field(default=30, gt=0)
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
                "retries": {},
                "disk": {},
                "logs": {},
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

    def clone_url_problem(self, forge: str, name: str, url: str) -> str | None:
        """Why a build of this repository may not fetch `url`; None when it may."""
        repository = self.repository(forge, name)
        if repository is None:
            return f"{forge} repository {name!r} is no longer in the config"
        return repository.clone_url_problem(url)

    def clone_credentials(self, forge: str, name: str) -> tuple[str, str] | None:
        """What a fetch of this repository authenticates with (clone_token), if anything."""
        repository = self.repository(forge, name)
        return repository.clone_credentials if repository else None

    @cached_property
    def unlabelled_images(self) -> frozenset[str]:
        """Images built without hookbuild's labels (`oci_labels: false`): the disk budget
        finds those by name instead. Made once (a worker makes it before it forks: 0.4 s
        for 10,000 repositories, whose images are filled in here)."""
        return frozenset(
            image.name
            for repository in self.repositories
            for image in repository.all_images
            if image.oci_labels is False
        )

    def repository_named(self, name: str) -> RepositoryConfig | None:
        return next((r for r in self.repositories if r.name == name), None)

    def registry_for(self, image: str) -> RegistryConfig | None:
        """The registry an image goes to: the one whose host is the image's first part."""
        host = image.split("/", 1)[0]
        return next((r for r in self.registries if r.host == host), None)


# libyaml's safe loader where PyYAML has it: four times faster on a large config.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(
    text: str,
    environ: Mapping[str, str],
    source: str = "",
    reading_only: bool = False,
    *,
    forges: Forges,
) -> Config:
    """Validate YAML text; raise `ConfigError` listing every problem with its location.
    `reading_only`: for commands that only read builds and logs, which need none of the
    secrets (builder/envsubst.py). `forges`: the forge drivers' registry, which `forge:`
    must name one of (the entry points pass `webhooks.forges.DRIVERS`)."""
    try:
        tree = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(where, f"not valid YAML: {problem}")], source) from exc
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError([ConfigProblem("", "the top level must be a mapping")], source)
    # Before any walk of the tree: a walk meets an aliased value once per alias.
    if problem := alias_problem(tree):
        raise ConfigError([problem], source)

    problems: list[ConfigProblem] = []
    tree = expand(tree, environ, problems, reading_only=reading_only)
    try:
        # One copy of each forge's facts, shared by its repositories (and by a pickled
        # config's: pickle keeps shared objects shared).
        facts = {name: ForgeFacts.of(forge) for name, forge in forges.items()}
        config = Config.model_validate(tree, context={"forges": facts})
    except ValidationError as exc:
        # A value whose variable is unset was already reported; its emptiness is no news.
        unset = {p.location for p in problems}
        problems.extend(p for p in problems_from(exc, Config) if p.location not in unset)
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    if config.state_dir is None:
        config = config.model_copy(update={"state_dir": _default_state_dir(environ)})
    return config


def load_config(
    path: str | Path, environ: Mapping[str, str], reading_only: bool = False, *, forges: Forges
) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", f"cannot read {path}: {exc.strerror}")], str(path)
        ) from exc
    return parse_config(text, environ, str(path), reading_only, forges=forges)
