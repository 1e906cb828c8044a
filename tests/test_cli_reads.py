"""Commands that only read builds and logs: they run without the secrets they never use,
and what they print is true (pushed tags, deliveries, a preview without a commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from redis import Redis

from runners.cli import main
from runners.deliverylog import DeliveryLog, DeliveryRecord
from runners.records import BuildRecord, BuildStatus, BuildStore

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


def _record(
    build_id: str, status: BuildStatus, tags: tuple[str, ...], **fields: Any
) -> BuildRecord:
    return BuildRecord(
        id=build_id,
        forge="github",
        repository="acme/web",
        ref="refs/tags/v1.4.0",
        sha="e6d44ef" + "0" * 33,
        image=IMAGE,
        tags=tags,
        status=status,
        **fields,
    )


IMAGE = "localhost:5000/acme/web"
RELEASE_TAGS = ("1.4.0", "1.4", "1", "latest")


def _rows(output: str) -> dict[str, str]:
    """`hookbuild builds`' lines by build id."""
    return {line.split()[0]: line for line in output.splitlines()}


def test_builds_shows_pushed_tags_and_marks_the_others(redis: Redis, redis_url: str) -> None:
    """#16.10: `hookbuild builds` shows a failed or cancelled build's tags as not pushed,
    and a build that pushed some of its tags names those, and the rest as not pushed."""
    store = BuildStore(redis)
    digest = "sha256:" + "d" * 64
    store.add(_record("failedbuild", BuildStatus.FAILED, RELEASE_TAGS, error="build failed"))
    store.add(_record("cancelledbld", BuildStatus.CANCELLED, RELEASE_TAGS))
    store.add(
        _record(
            "partialbuild",
            BuildStatus.SUCCEEDED,
            RELEASE_TAGS,
            digests={f"{IMAGE}:1.4.0": digest, f"{IMAGE}:latest": digest},
        )
    )
    store.add(
        _record(
            "wholebuild",
            BuildStatus.SUCCEEDED,
            ("main",),
            digests={f"{IMAGE}:main": digest},
        )
    )
    store.add(_record("queuedbuild", BuildStatus.QUEUED, ("main",)))
    result = CliRunner(env=UNSET).invoke(
        main, ["builds", "--config", str(EXAMPLE), "--redis-url", redis_url]
    )
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["ID"].split()[-1] == "TAGS"
    assert rows["failedbuild"].endswith("none pushed (not pushed: 1.4.0,1.4,1,latest)")
    assert rows["cancelledbld"].endswith("none pushed (not pushed: 1.4.0,1.4,1,latest)")
    assert rows["partialbuild"].endswith("1.4.0,latest (not pushed: 1.4,1)")
    assert rows["wholebuild"].endswith("  main")
    assert rows["queuedbuild"].endswith("to push: main")


def test_builds_says_when_there_are_none(redis: Redis, redis_url: str) -> None:
    """#16.10: an empty listing says so, rather than printing a bare header."""
    runner = CliRunner(env=UNSET)
    options = ["--config", str(EXAMPLE), "--redis-url", redis_url]
    assert runner.invoke(main, ["builds", *options]).output == "no builds yet\n"
    filtered = runner.invoke(main, ["builds", *options, "--status", "failed"])
    assert filtered.output == "no builds match these filters\n"


def test_events_has_a_header_the_event_and_the_delivery_id(redis: Redis, redis_url: str) -> None:
    """#16.10: `hookbuild events` says when there are no deliveries yet, and lists each
    under a header with its event and delivery id."""
    runner = CliRunner(env=UNSET)
    options = ["--config", str(EXAMPLE), "--redis-url", redis_url]
    empty = runner.invoke(main, ["events", *options])
    assert empty.exit_code == 0, empty.output
    assert empty.output.startswith("no deliveries yet; point a forge's webhook at ")

    deliveries = DeliveryLog(redis)
    deliveries.add(
        DeliveryRecord(
            forge="github",
            outcome="ignored",
            status=200,
            reason="ping",
            event="ping",
            delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        )
    )
    deliveries.add(
        DeliveryRecord(
            forge="gitlab",
            outcome="built",
            status=202,
            event="Push Hook",
            delivery_id="f1e2d3c4-0000-4000-8000-000000000001",
            repository="acme/web",
            ref="refs/heads/main",
            builds=["0123456789abcdef"],
        )
    )
    listing = runner.invoke(main, ["events", *options])
    assert listing.exit_code == 0, listing.output
    header, newest, oldest = listing.output.splitlines()
    assert header.split() == [
        "WHEN", "(UTC)", "FORGE", "EVENT", "DELIVERY", "HTTP", "OUTCOME", "REPOSITORY", "REF",
        "BUILDS", "/", "WHY",
    ]  # fmt: skip
    assert "gitlab  Push Hook  f1e2d3c4-0000-4000-8000-000000000001  202" in newest
    assert newest.endswith("acme/web    refs/heads/main  0123456789abcdef")
    assert "github  ping       72d3162e-cc78-11e3-81ab-4c9367dc0958  200" in oldest
    assert oldest.endswith("-           -                ping")


def test_preview_without_sha_shows_no_made_up_commit() -> None:
    """#16.10: `preview` without --sha shows `<commit>` and says no --sha was given, where
    it showed a placeholder commit (`at 0123456`, tag `0123456`) that looked real."""
    runner = CliRunner(env=UNSET)
    config = ["--config", str(EXAMPLE), "--repo", "acme/web", "--ref", "main"]
    result = runner.invoke(main, ["preview", *config])
    assert result.exit_code == 0, result.output
    assert "0123456" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "acme/web refs/heads/main at <commit>"
    assert lines[1] == "  no --sha given: <commit> stands for the pushed commit in tags too"
    assert "localhost:5000/acme/web: latest, <commit>" in result.output

    given = runner.invoke(main, ["preview", *config, "--sha", "b" * 40])
    assert given.output.splitlines()[0] == "acme/web refs/heads/main at bbbbbbb"
    assert (
        "<commit>" not in given.output
        and "localhost:5000/acme/web: latest, bbbbbbb" in given.output
    )


def test_each_reading_command_says_what_it_shows() -> None:
    """#16.10: each reading command's --help names what it prints."""
    runner = CliRunner()
    builds = runner.invoke(main, ["builds", "--help"]).output
    assert "not pushed" in builds and "to push" in builds
    events = runner.invoke(main, ["events", "--help"]).output
    assert "event and delivery id" in events
    preview = runner.invoke(main, ["preview", "--help"]).output
    assert "<commit>" in preview
