"""What several commands share: their options, loading the config, reaching Redis, and
printing untrusted text."""

from __future__ import annotations

import os
from pathlib import Path

import click
from redis import Redis
from redis.exceptions import RedisError

from builder.config import Config, load_config
from builder.errors import HookbuildError
from builder.printable import printable, printable_lines
from runners import redisclient
from runners.configload import load_config_compact
from runners.errors import from_redis_error
from runners.redis_server import PrivateRedis
from webhooks.forges import DRIVERS

CONFIG_HELP = "The config file. Default: $HOOKBUILD_CONFIG, else ./builds.yml."
config_option = click.option(
    "--config",
    "config_path",
    envvar="HOOKBUILD_CONFIG",
    default="builds.yml",
    show_envvar=True,
    type=click.Path(dir_okay=False),
    help=CONFIG_HELP,
)
redis_option = click.option(
    "--redis-url",
    default=None,
    help="Redis to use instead of the config's redis.url (or the private one of `hookbuild up`).",
)

processes_option = click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Serving processes sharing the port (default: the config's server.processes).",
)
server_option = click.option(
    "--server",
    envvar="HOOKBUILD_SERVER",
    show_envvar=True,
    default=None,
    help="The hookbuild server's URL (default: the config's server.listen, on this machine).",
)
token_option = click.option(
    "--token",
    envvar="HOOKBUILD_TOKEN",
    show_envvar=True,
    default=None,
    help="API token, where reads need one (default: the config's server.token).",
)


def load(config_path: str, long_running: bool = False, reading_only: bool = False) -> Config:
    """`long_running`: a server or worker, which parses in a child to keep its memory down
    (runners/configload.py). `reading_only`: a command that needs none of the secrets a
    build or a webhook uses, so their variables may be unset in its shell."""
    try:
        if long_running:
            return load_config_compact(config_path, os.environ, forges=DRIVERS)
        return load_config(config_path, os.environ, reading_only, forges=DRIVERS)
    except HookbuildError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc


def resolve_redis_url(config: Config, override: str | None) -> str:
    return override or config.redis.url or PrivateRedis(Path(config.state_dir or ".")).url


def connect(config: Config, override: str | None) -> Redis:
    url = resolve_redis_url(config, override)
    connection = redisclient.from_url(url)
    try:
        connection.ping()
    except RedisError as exc:
        error = from_redis_error(exc, f"cannot reach Redis at {url}")
        raise click.ClickException(f"{error}: is `hookbuild up` running with this config?") from exc
    return connection


def echo(text: str, err: bool = False) -> None:
    """Print text that holds untrusted parts (names, refs, reasons from payloads and
    builds) with every control character escaped (builder.printable)."""
    click.echo(printable(text), err=err)
