"""The commands that act on builds: `build` (a first build or a rebuild) and `cancel`."""

from __future__ import annotations

import sys

import click

from builder.errors import HookbuildError, TriggerRequestError
from builder.printable import printable_lines
from builder.trigger import checked_sha
from runners.buildrequest import request_build
from runners.cli.follow import follow as follow_build
from runners.cli.follow import log_client
from runners.cli.options import (
    config_option,
    connect,
    echo,
    load,
    redis_option,
    server_option,
    token_option,
)
from runners.errors import LogStreamError
from runners.queue import BuildQueue


@click.command()
@config_option
@redis_option
@click.argument("repository")
@click.option(
    "--ref",
    default=None,
    help="Branch, tag or full ref (refs/heads/main). Default: the default branch.",
)
@click.option(
    "--sha", default=None, help="The commit to build (default: the ref's head, via git ls-remote)."
)
@click.option(
    "--follow", "-f", is_flag=True, help="Print the build log as it runs; exit with its result."
)
@server_option
@token_option
def build(
    config_path: str,
    redis_url: str | None,
    repository: str,
    ref: str | None,
    sha: str | None,
    follow: bool,
    server: str | None,
    token: str | None,
) -> None:
    """Build REPOSITORY at a ref now, through its rules: a first build or a rebuild."""
    config = load(config_path)
    configured = config.repository_named(repository)
    if configured is None:
        raise click.ClickException(f"no repository {repository!r} in {config_path}")
    connection = connect(config, redis_url)
    try:
        queue = BuildQueue.for_config(connection, config)
        outcome = request_build(queue, configured, ref, checked_sha(sha), "hookbuild build")
    except (TriggerRequestError, HookbuildError) as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc
    if outcome.skipped:
        raise click.ClickException(
            f"nothing to build for {outcome.ref} at {outcome.sha[:7]}: {outcome.skipped}"
        )
    for build_id in outcome.builds:
        echo(f"{build_id} {outcome.ref} {outcome.sha[:7]}")
    if follow:
        client = log_client(config, server, token)
        try:
            sys.exit(max(follow_build(client, build_id) for build_id in outcome.builds))
        except LogStreamError as exc:
            raise click.ClickException(printable_lines(str(exc))) from exc


@click.command()
@config_option
@redis_option
@click.argument("build_id")
def cancel(config_path: str, redis_url: str | None, build_id: str) -> None:
    """Cancel a build wherever it is: waiting, queued, or running (it is stopped on the engine)."""
    config = load(config_path, reading_only=True)
    queue = BuildQueue.for_config(connect(config, redis_url), config)
    record = queue.cancel(build_id, "cancelled with hookbuild cancel")
    if record is None:
        raise click.ClickException(f"no build {build_id!r}")
    echo(f"{record.id} {record.status.value}" + (f": {record.error}" if record.error else ""))
