"""Printing a build's log from the server's API, once or as it runs (`logs`, `build -f`)."""

from __future__ import annotations

import sys

import click

from builder.config import Config
from builder.logpatterns import BUILDKIT_STEP, CLASSIC_STEP
from builder.printable import printable_lines, printable_log_line
from runners.cli.logstream import LogClient
from runners.cli.options import echo
from runners.errors import LogStreamError
from runners.records import BuildStatus

EXIT_CODES = {
    BuildStatus.SUCCEEDED: 0,
    BuildStatus.SKIPPED: 0,  # nothing to build is not a failure
    BuildStatus.FAILED: 1,
    BuildStatus.CANCELLED: 2,
}


def log_client(config: Config, server: str | None, token: str | None) -> LogClient:
    """The server named by --server, else the one this config's `server.listen` runs."""
    if server is None:
        host = config.server.host
        # A server that listens everywhere is reached here on loopback.
        everywhere = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104
        host = everywhere.get(host, host)
        server = f"http://{f'[{host}]' if ':' in host else host}:{config.server.port}"
    try:
        return LogClient(server, token or config.server.token)
    except LogStreamError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc


def is_terminal() -> bool:
    """Colours in a build's output are kept only for a terminal."""
    return sys.stdout.isatty()


def _is_step(line: str) -> bool:
    return bool(CLASSIC_STEP.match(line) or BUILDKIT_STEP.match(line))


def follow(client: LogClient, build_id: str) -> int:
    """Print a build's log as it grows, every line once; return the exit code its end
    calls for. Build steps stand out on a terminal."""

    colours = is_terminal()

    def line(text: str) -> None:
        text = printable_log_line(text, colours)
        click.echo(click.style(text, bold=True) if _is_step(text) else text)

    ended = client.follow(build_id, line)
    if ended not in {s.value for s in BuildStatus}:
        echo(f"build {build_id} is gone (expired or removed)", err=True)
        return 1
    status = BuildStatus(ended)
    error = client.build(build_id).get("error")
    if error:
        echo(f"build {build_id} {status.value}: {error}", err=True)
    return EXIT_CODES.get(status, 1)
