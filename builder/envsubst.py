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


def expand(
    tree: Any,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
    path: tuple[str | int, ...] = (),
) -> Any:
    """Expand references in every string of a YAML tree; unset variables become problems.

    `$$` stands for a literal `$`.
    """
    if isinstance(tree, dict):
        return {
            key: expand(value, environ, problems, (*path, str(key))) for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [expand(item, environ, problems, (*path, index)) for index, item in enumerate(tree)]
    if not isinstance(tree, str):
        return tree

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(ConfigProblem(location_of(path), f"environment variable {name} is not set"))
        return ""

    return _REFERENCE.sub(substitute, tree)
