"""The `hookbuild` command line: the group and its options here, each command in the module
of its family (service, reading, acting, preview, check), imported only when it runs.

The command modules are where everything may be wired together: the server, the workers,
the store and the webhooks side (tests/test_layers.py holds the rest of the code to that)."""

from __future__ import annotations

import click

from runners import servicelog
from runners.cli.lazy import LazyGroup

COMMANDS = {
    "up": "runners.cli.service:up",
    "serve": "runners.cli.service:serve",
    "worker": "runners.cli.service:worker",
    "builds": "runners.cli.reading:builds",
    "logs": "runners.cli.reading:logs",
    "events": "runners.cli.reading:events",
    "preview": "runners.cli.preview:preview",
    "build": "runners.cli.acting:build",
    "cancel": "runners.cli.acting:cancel",
    "check": "runners.cli.check:check",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--log-format",
    type=click.Choice(servicelog.FORMATS),
    envvar=servicelog.FORMAT_ENV,
    show_envvar=True,
    default="text",
    show_default=True,
    help="The service's own log lines on stderr: readable text, or one JSON object a line.",
)
@click.option(
    "--log-level",
    type=click.Choice(servicelog.LEVELS),
    envvar=servicelog.LEVEL_ENV,
    show_envvar=True,
    default=None,
    help="Default: info for up, serve and worker; warning for the one-shot commands.",
)
@click.pass_context
def main(ctx: click.Context, log_format: str, log_level: str | None) -> None:
    """hookbuild: build container images from forge webhooks.

    A push on the forge sends a webhook; hookbuild verifies it, matches it against the
    rules in the config file, builds the pushed commit with Docker and pushes the image
    under every tag the rules give.
    """
    if log_level is None:
        # A one-shot command's output is its answer; the service's lines would be noise.
        serving = ctx.invoked_subcommand in ("up", "serve", "worker")
        log_level = "info" if serving else "warning"
    servicelog.configure(log_format, log_level)
    ctx.obj = ["--log-format", log_format, "--log-level", log_level]  # for `up`'s workers
