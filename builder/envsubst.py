"""`${VAR}` and `${VAR:-default}` references in config values, read from a given environment.

Secrets never live in the config file; they come from the environment the service runs in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from builder.errors import ConfigProblem

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$\$")


def location_of(path: tuple[str | int, ...]) -> str:
    """`("repositories", 0, "rules", 1)` -> `repositories[0].rules[1]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# The values a command that only reads (builds, logs, events, preview, cancel) never uses:
# what is sent to a forge, a registry or a build. Such a command may run in a shell that
# lacks those secrets.
_UNUSED_BY_READERS = frozenset(
    {
        "secret",
        "signing_token",
        "trigger_token",
        "clone_username",
        "clone_token",
        "username",
        "password",
        "build_args",
        "secret_build_args",
    }
)


def _unused_by_readers(path: tuple[str | int, ...]) -> bool:
    return (
        bool(path)
        and path[0] in ("repositories", "registries")
        and any(part in _UNUSED_BY_READERS for part in path)
    )


def expand(
    tree: Any,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
    path: tuple[str | int, ...] = (),
    reading_only: bool = False,
) -> Any:
    """Expand references in every string of a YAML tree; unset variables become problems.

    `$$` stands for a literal `$`. `reading_only`: for a command that only reads, an unset
    variable in a value it never uses (a webhook secret, a token, a registry password, a
    build arg) stays as its `${NAME}` text instead.
    """
    if isinstance(tree, dict):
        return {
            key: expand(value, environ, problems, (*path, str(key)), reading_only)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [
            expand(item, environ, problems, (*path, index), reading_only)
            for index, item in enumerate(tree)
        ]
    if not isinstance(tree, str):
        return tree
    keep_unset = reading_only and _unused_by_readers(path)

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        if keep_unset:
            return match.group(0)
        problems.append(ConfigProblem(location_of(path), f"environment variable {name} is not set"))
        return ""

    return _REFERENCE.sub(substitute, tree)
