"""Commands that only read builds and logs run without the secrets they never use."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from redis import Redis

from runners.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "builds.example.yml"
# What builds.example.yml reads from the environment, all of it unset for these tests.
UNSET: dict[str, str | None] = {
    "ACME_WEB_SECRET": None,
    "REGISTRY_USER": None,
    "REGISTRY_PASSWORD": None,
    "HOOKBUILD_CONFIG": None,
}


def test_reading_commands_need_no_webhook_secret(redis: Redis, redis_url: str) -> None:
    """#16.7: builds, events and preview run on builds.example.yml with ACME_WEB_SECRET
    unset (they used to fail: 'environment variable ACME_WEB_SECRET is not set')."""
    runner = CliRunner(env=UNSET)
    config = ["--config", str(EXAMPLE)]
    for command in (
        ["builds", *config, "--redis-url", redis_url],
        ["events", *config, "--redis-url", redis_url],
        ["preview", *config, "--repo", "acme/web", "--ref", "main", "--sha", "a" * 40],
    ):
        result = runner.invoke(main, command)
        assert result.exit_code == 0, (command, result.output)
        assert "ACME_WEB_SECRET" not in result.output
    preview = runner.invoke(
        main, ["preview", *config, "--repo", "acme/web", "--ref", "main", "--sha", "a" * 40]
    )
    assert "localhost:5000/acme/web: latest, aaaaaaa" in preview.output


def test_a_command_that_uses_the_secrets_still_needs_them(tmp_path: Path, redis_url: str) -> None:
    """check (and every command that builds or serves) still names the unset variable, and
    a reading command still needs what it uses itself (the Redis URL)."""
    runner = CliRunner(env=UNSET)
    check = runner.invoke(main, ["check", str(EXAMPLE)])
    assert check.exit_code == 1
    assert "environment variable ACME_WEB_SECRET is not set" in check.output

    config = tmp_path / "builds.yml"
    config.write_text(
        EXAMPLE.read_text().replace("redis:\n", "redis:\n  url: ${HOOKBUILD_TEST_REDIS}\n", 1)
    )
    builds = runner.invoke(main, ["builds", "--config", str(config)])
    assert builds.exit_code == 1
    assert "environment variable HOOKBUILD_TEST_REDIS is not set" in builds.output
    assert "ACME_WEB_SECRET" not in builds.output
