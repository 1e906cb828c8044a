"""The one place tests write a hookbuild config: a repository entry and the file around it,
from a few arguments, dumped as YAML (and parsed or written where a test wants that).

Tests of the YAML itself (config errors, hostile YAML) keep their text inline; every other
test describes its config here. Rules and extra settings may be given as the YAML lines a
test reads best (`"      - branch: main\\n        tags: [latest]\\n"`, indented as in a
config file or not), or as Python values.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from builder import config as config_model
from builder.config import Config
from runners.configload import load_config_compact as _load_compact
from tests.registry import RegistryReader
from webhooks.forges import DRIVERS

Fragment = str | Mapping[str, Any]
Rules = str | Sequence[Mapping[str, Any]]

MAIN_TAGS = '      - branch: main\n        tags: [latest, "{short_sha}"]\n'


# The config with every registered forge, as the entry points load it (runners/cli.py):
# tests that read a config directly use these.
def parse_config(
    text: str, environ: Mapping[str, str], source: str = "", reading_only: bool = False
) -> Config:
    return config_model.parse_config(text, environ, source, reading_only, forges=DRIVERS)


def load_config(path: str | Path, environ: Mapping[str, str], reading_only: bool = False) -> Config:
    return config_model.load_config(path, environ, reading_only, forges=DRIVERS)


def load_config_compact(path: str | Path, environ: Mapping[str, str]) -> Config:
    return _load_compact(path, environ, forges=DRIVERS)


def _yaml(value: str) -> Any:
    return yaml.safe_load(textwrap.dedent(value)) if value.strip() else None


def _mapping(fragment: Fragment) -> dict[str, Any]:
    loaded = _yaml(fragment) if isinstance(fragment, str) else fragment
    return dict(loaded or {})


def repository(
    name: str,
    image: str | None,
    *,
    secret: str,
    rules: Rules | None = MAIN_TAGS,
    forge: str = "github",
    clone_url: str | None = None,
    build_args: Mapping[str, str] | None = None,
    extra: Fragment = "",
    **fields: Any,
) -> dict[str, Any]:
    """One `repositories:` entry. `extra` and `fields` add the entry's other settings
    (`builder`, `clone_hosts`, `trigger_token`, `images`, ...); `image=None, rules=None`
    give the entry none of its own (its `images:` have theirs)."""
    entry: dict[str, Any] = {"name": name, "forge": forge, "secret": secret}
    if clone_url is not None:
        entry["clone_url"] = clone_url
    if image is not None:
        entry["image"] = image
    if build_args is not None:
        entry["build_args"] = dict(build_args)
    entry.update(_mapping(extra))
    entry.update(fields)
    if isinstance(rules, str):
        entry["rules"] = _yaml(rules)
    elif rules is not None:
        entry["rules"] = [dict(rule) for rule in rules]
    return entry


def config_text(
    state_dir: Path | str,
    repositories: Sequence[Mapping[str, Any]],
    *,
    extra: Fragment = "",
    **settings: Any,
) -> str:
    """A whole config file: `state_dir`, the top-level `settings` and `extra`, the entries."""
    tree: dict[str, Any] = {"state_dir": str(state_dir), **settings, **_mapping(extra)}
    tree["repositories"] = [dict(entry) for entry in repositories]
    return yaml.safe_dump(tree, sort_keys=False)


def config(
    state_dir: Path | str,
    repositories: Sequence[Mapping[str, Any]],
    *,
    environ: Mapping[str, str] | None = None,
    extra: Fragment = "",
    **settings: Any,
) -> Config:
    """The config `config_text` describes, parsed with `environ` for its `${VAR}`s."""
    text = config_text(state_dir, repositories, extra=extra, **settings)
    return parse_config(text, environ or {})


def config_file(
    path: Path,
    state_dir: Path | str,
    repositories: Sequence[Mapping[str, Any]],
    *,
    extra: Fragment = "",
    **settings: Any,
) -> Path:
    """The config `config_text` describes, written to `path` (for `--config`)."""
    path.write_text(config_text(state_dir, repositories, extra=extra, **settings))
    return path


ACME_SECRET = "rules-secret"


def acme_web(
    tmp_path: Path,
    registry: RegistryReader,
    clone_url: str,
    image: str,
    rules: Rules,
    extra: Fragment = "",
    secret: str = ACME_SECRET,
) -> Config:
    """`acme/web` on GitHub, cloned from `clone_url`, built with `GREETING=hi` into `image`
    in `registry`; its state under `tmp_path`."""
    entry = repository(
        "acme/web",
        f"{registry.host}/{image}",
        secret=secret,
        clone_url=clone_url,
        build_args={"GREETING": "hi"},
        extra=extra,
        rules=rules,
    )
    return config(tmp_path / "state", [entry])
