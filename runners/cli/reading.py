"""The commands that read what the service holds: `builds`, `logs`, `events`."""

from __future__ import annotations

import sys

import click

from builder.printable import printable_lines, printable_log_line
from runners.cli import views
from runners.cli.follow import follow as follow_build
from runners.cli.follow import is_terminal, log_client
from runners.cli.options import (
    config_option,
    connect,
    echo,
    load,
    redis_option,
    server_option,
    token_option,
)
from runners.deliverylog import DeliveryLog, with_build_outcomes
from runners.errors import LogStreamError
from runners.queue import BuildQueue
from runners.records import BuildQuery, BuildRecord, BuildStatus, BuildStore


@click.command()
@config_option
@redis_option
@click.option("--repository", default=None, help="Only this repository's builds.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in BuildStatus]),
    default=None,
    help="Only builds in this state.",
)
@click.option("--ref", default=None, help="Only this branch or tag (main, v1.2, refs/heads/main).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def builds(
    config_path: str,
    redis_url: str | None,
    repository: str | None,
    status: str | None,
    ref: str | None,
    limit: int,
) -> None:
    """List builds, newest first: id, repository, ref, sha, status, duration, tags.

    TAGS shows the tags a finished build pushed; the tags its rules gave that it did not
    push (it failed, was cancelled, or a newer commit holds them) follow as "(not pushed:
    ...)". A build still queued or running shows the tags it is to push."""
    config = load(config_path, reading_only=True)
    queue = BuildQueue.for_config(connect(config, redis_url), config)
    query = BuildQuery(repository, BuildStatus(status) if status else None, ref)
    records = queue.store.find(query, limit=limit)

    def state(record: BuildRecord) -> str:
        position = queue.position(record)
        return f"{record.status.value}(#{position})" if position else record.status.value

    if not records:
        echo("no builds match these filters" if any((repository, status, ref)) else "no builds yet")
        return
    for line in views.table(views.build_rows(records, state)):
        click.echo(line)


@click.command()
@config_option
@redis_option
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def events(config_path: str, redis_url: str | None, limit: int) -> None:
    """List recent webhook deliveries, newest first, and what came of each.

    Per delivery: when it came (UTC), the forge, its event and delivery id, the HTTP
    status the forge got, the outcome (built, skipped, ignored, duplicate, rejected,
    error), its repository and ref, and its builds or why there are none."""
    config = load(config_path, reading_only=True)
    connection = connect(config, redis_url)
    store = BuildStore(connection)
    recent = DeliveryLog(connection).recent(limit)
    if not recent:
        click.echo(views.NO_DELIVERIES)
        return
    for line in views.table(views.event_rows(with_build_outcomes(recent, store))):
        click.echo(line)


@click.command()
@config_option
@server_option
@token_option
@click.argument("build_id")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing as the build runs; exit with its result."
)
def logs(
    config_path: str, server: str | None, token: str | None, build_id: str, follow: bool
) -> None:
    """Print a build's log, read from the hookbuild server's API.

    With --follow, print each line as the engine prints it (the stream the dashboard
    shows; a dropped connection resumes where it stopped), then exit 0 if the build
    succeeded (or was skipped by a path filter), 1 if it failed, 2 if it was cancelled.
    """
    client = log_client(load(config_path, reading_only=True), server, token)
    try:
        if not follow:
            colours = is_terminal()
            for line in client.log(build_id):
                click.echo(printable_log_line(line, colours))
            return
        sys.exit(follow_build(client, build_id))
    except LogStreamError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc
