"""#15: YAML aliases in the config are bounded: a "billion laughs" file fails fast and clearly,
in `hookbuild check` and wherever a config is loaded; anchors of ordinary size still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from runners.cli import main
from tests.configs import parse_config

# Ten levels of nine aliases: 9^10 strings once expanded, 30 values written.
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefghi", "bcdefghij", strict=True)
)


def test_check_refuses_a_billion_laughs_at_once(tmp_path: Path) -> None:
    """#15: `hookbuild check` on a billion-laughs YAML exits 1 at once, saying why."""
    path = tmp_path / "laughs.yml"
    path.write_text(LAUGHS + "repositories: *j\n")

    # A process of its own, with a deadline: before the fix it ran for minutes and took
    # gigabytes, so the deadline is what makes it fail rather than hang the session.
    done = subprocess.run(
        [sys.executable, "-m", "runners.cli", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert f"{path}: 1 config error(s)" in done.stderr
    assert "aliases (*name) make " in done.stderr and "(a YAML bomb?)" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_alias_inside_its_own_anchor_is_a_config_error(tmp_path: Path) -> None:
    """#15: a recursive alias (a cycle) is a clear config error, not a RecursionError."""
    path = tmp_path / "cycle.yml"
    path.write_text("repositories: &r [*r]\n")

    result = CliRunner().invoke(main, ["check", str(path)])

    assert result.exit_code == 1
    assert "an alias refers to the value that holds it (a cycle)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_anchors_and_merge_keys_of_ordinary_size_still_load() -> None:
    """#15: the bound leaves ordinary anchors alone: the first repository's keys merged
    (`<<:`) into 50 more, each overriding its name and image."""
    first = (
        "  - &first\n    name: acme/app\n    forge: github\n    secret: s3cret-value\n"
        "    image: localhost:5000/acme/app\n    rules:\n      - {branch: main, tags: [latest]}\n"
    )
    more = "".join(
        f"  - <<: *first\n    name: acme/app{n}\n    image: localhost:5000/acme/app{n}\n"
        for n in range(50)
    )

    config = parse_config(f"repositories:\n{first}{more}", {})

    assert len(config.repositories) == 51
    last = config.repositories[-1]
    assert (last.name, last.forge, last.secret) == ("acme/app49", "github", "s3cret-value")
    assert [rule.branch for rule in last.rules or []] == ["main"]
