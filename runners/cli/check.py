"""`hookbuild check`: validate a config file."""

from __future__ import annotations

import os
import sys

import click

from builder.config import load_config
from builder.errors import ConfigError
from webhooks.forges import DRIVERS


@click.command()
@click.argument("config_file", type=click.Path(dir_okay=False))
def check(config_file: str) -> None:
    """Validate CONFIG_FILE: print every error with its location; exit 1 on any."""
    try:
        config = load_config(config_file, os.environ, forges=DRIVERS)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    images = [image for r in config.repositories for image in r.all_images]
    rules = sum(len(image.rules) for image in images)
    click.echo(
        f"{config_file}: ok ({len(config.repositories)} repositories, "
        f"{len(images)} images, {rules} rules)"
    )
