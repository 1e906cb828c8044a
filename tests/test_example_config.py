"""builds.example.yml is the documented example: it loads as it is, and so does every
option and block in it that is commented out, uncommented (one at a time)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.configs import parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "builds.example.yml"
TEXT = EXAMPLE.read_text()
# Every ${VAR} the file reads, set (long enough for server.token).
ENVIRON = {name: f"{name.lower()}-value-0123456789" for name in re.findall(r"\$\{(\w+)", TEXT)}
# A commented-out option: `# key: value` at an option's indentation (prose that looks
# like one, `# false: every read ...`, is no mapping of a name).
OPTION = re.compile(r"^(?P<indent>\s*)# (?P<option>[a-z_]+: .*)$")


def _is_option(text: str) -> bool:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, dict) and all(isinstance(key, str) for key in loaded)


def _uncommented_options() -> list[Any]:  # pytest.param values
    lines = TEXT.splitlines()
    return [
        pytest.param(
            "\n".join([*lines[:number], match["indent"] + match["option"], *lines[number + 1 :]]),
            id=f"line {number + 1}: {match['option']}",
        )
        for number, line in enumerate(lines)
        if (match := OPTION.match(line)) and _is_option(match["option"])
    ]


def _uncommented_block(first: str, last_prefix: str, marker: str) -> str:
    """The file with the commented block that starts at the line `first` uncommented
    (its `marker` taken out of each line): its lines up to the last that starts with
    `last_prefix`."""
    lines = TEXT.splitlines()
    start = lines.index(first)
    end = start
    while end + 1 < len(lines) and lines[end + 1].startswith(last_prefix):
        end += 1
    at = first.index(marker)
    for number in range(start, end + 1):
        line = lines[number]
        lines[number] = line[:at] + line[at + len(marker) :]
    return "\n".join(lines)


def test_the_example_loads_as_it_is() -> None:
    config = parse_config(TEXT, ENVIRON, str(EXAMPLE))
    assert [r.name for r in config.repositories] == ["acme/web"]


@pytest.mark.parametrize("text", _uncommented_options())
def test_every_commented_option_loads_when_uncommented(text: str) -> None:
    parse_config(text, ENVIRON, str(EXAMPLE))


def test_the_rule_override_example_loads_when_uncommented() -> None:
    text = _uncommented_block("      # - branch: docs", "      #   ", "# ")
    config = parse_config(text, ENVIRON, str(EXAMPLE))
    docs = config.repositories[0].rules or []
    assert [rule.branch for rule in docs][-1] == "docs"


def test_the_monorepo_example_loads_when_uncommented() -> None:
    """#16.9: it failed `check` ({1} with a pattern that has no group)."""
    text = _uncommented_block("#  - name: acme/platform", "#  ", "#")
    config = parse_config(text, ENVIRON, str(EXAMPLE))
    assert [r.name for r in config.repositories] == ["acme/web", "acme/platform"]
    assert len(config.repositories[1].images or []) == 2
