"""The long-running commands: `up` (server and workers), `serve`, `worker`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from builder.errors import HookbuildError
from builder.printable import printable_lines
from runners import servicelog
from runners.cli.options import (
    config_option,
    connect,
    load,
    processes_option,
    redis_option,
    resolve_redis_url,
)
from runners.redis_server import PrivateRedis
from runners.server import serve as run_server
from runners.supervisor import WorkerSupervisor
from runners.worker.engineprobe import announce_engine
from runners.worker.process import run_worker

log = servicelog.get_logger("hookbuild")


@click.command()
@config_option
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=None,
    help="Build workers (default: the config's `workers`).",
)
@processes_option
def up(config_path: str, workers: int | None, processes: int | None) -> None:
    """Run the webhook server and the build workers in one process tree.

    With no redis.url in the config, a private redis-server runs in the state directory,
    persisting the queue across restarts. Stop with Ctrl-C or SIGTERM: workers finish or
    hand back their builds.
    """
    config = load(config_path, long_running=True)
    state_dir = Path(config.state_dir or ".hookbuild")
    state_dir.mkdir(parents=True, exist_ok=True)
    private = None
    if config.redis.url is None:
        private = PrivateRedis(state_dir)
        try:
            private.start()
        except HookbuildError as exc:
            raise click.ClickException(printable_lines(str(exc))) from exc
    url = resolve_redis_url(config, None)
    count = config.workers if workers is None else workers
    logging_options = click.get_current_context().find_root().obj or []
    if count:
        announce_engine(os.environ)  # once, for every worker below: they skip their own
    supervisor = WorkerSupervisor(config_path, url, count, logging_options)
    supervisor.start()
    log.info("hookbuild up", workers=count, redis=url, state_dir=str(state_dir))
    try:
        run_server(config_path, config, url, processes or config.server.processes)
    finally:
        supervisor.stop()
        if private is not None:
            private.stop()


@click.command()
@config_option
@redis_option
@processes_option
def serve(config_path: str, redis_url: str | None, processes: int | None) -> None:
    """Run the webhook receiver, the API and the dashboard alone, without build workers."""
    config = load(config_path, long_running=True)
    connect(config, redis_url)  # fail now, clearly, if Redis is not there
    url = resolve_redis_url(config, redis_url)
    run_server(config_path, config, url, processes or config.server.processes)


@click.command()
@config_option
@redis_option
@click.option("--name", default=None, help="Worker name (default: HOST.PID).")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--engine-announced", is_flag=True, hidden=True)  # `up` logged the engine
def worker(
    config_path: str, redis_url: str | None, name: str | None, burst: bool, engine_announced: bool
) -> None:
    """Run one build worker. It builds on the Docker engine that DOCKER_HOST names
    (default: unix:///var/run/docker.sock), and says at start whether that one answers."""
    config = load(config_path, long_running=True)
    if not engine_announced:
        announce_engine(os.environ)
    run_worker(config, connect(config, redis_url), os.environ, name=name, burst=burst)
