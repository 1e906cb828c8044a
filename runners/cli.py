"""The `hookbuild` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
from redis import Redis
from redis.exceptions import RedisError

from builder.config import Config, load_config
from builder.errors import ConfigError, HookbuildError
from builder.logpatterns import BUILDKIT_STEP, CLASSIC_STEP
from builder.printable import printable, printable_lines, printable_log_line
from runners import cliviews, redisclient, servicelog
from runners.children import spawn
from runners.logstream import LogClient, LogStreamError
from runners.records import BuildQuery, BuildRecord, BuildStatus, BuildStore
from runners.redis_server import PrivateRedis

log = servicelog.get_logger("hookbuild")
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


def _load(config_path: str, long_running: bool = False, reading_only: bool = False) -> Config:
    """`long_running`: a server or worker, which parses in a child to keep its memory down
    (runners/configload.py). `reading_only`: a command that needs none of the secrets a
    build or a webhook uses, so their variables may be unset in its shell."""
    from runners.configload import load_config_compact

    try:
        if long_running:
            return load_config_compact(config_path, os.environ)
        return load_config(config_path, os.environ, reading_only)
    except HookbuildError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc


def _redis_url(config: Config, override: str | None) -> str:
    return override or config.redis.url or PrivateRedis(Path(config.state_dir or ".")).url


def _connect(config: Config, override: str | None) -> Redis:
    url = _redis_url(config, override)
    connection = redisclient.from_url(url)
    try:
        connection.ping()
    except RedisError as exc:
        raise click.ClickException(
            f"cannot reach Redis at {url} ({exc}): is `hookbuild up` running with this config?"
        ) from exc
    return connection


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


@main.command()
@click.argument("config_file", type=click.Path(dir_okay=False))
def check(config_file: str) -> None:
    """Validate CONFIG_FILE: print every error with its location; exit 1 on any."""
    try:
        config = load_config(config_file, os.environ)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    images = [image for r in config.repositories for image in r.all_images]
    rules = sum(len(image.rules) for image in images)
    click.echo(
        f"{config_file}: ok ({len(config.repositories)} repositories, "
        f"{len(images)} images, {rules} rules)"
    )


@main.command()
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
    config = _load(config_path, long_running=True)
    state_dir = Path(config.state_dir or ".hookbuild")
    state_dir.mkdir(parents=True, exist_ok=True)
    private = None
    if config.redis.url is None:
        private = PrivateRedis(state_dir)
        try:
            private.start()
        except HookbuildError as exc:
            raise click.ClickException(printable_lines(str(exc))) from exc
    url = _redis_url(config, None)
    count = config.workers if workers is None else workers
    logging_options = click.get_current_context().find_root().obj or []
    if count:
        from runners.engineprobe import announce_engine

        announce_engine(os.environ)  # once, for every worker below: they skip their own
    supervisor = _WorkerSupervisor(config_path, url, count, logging_options)
    supervisor.start()
    log.info("hookbuild up", workers=count, redis=url, state_dir=str(state_dir))
    from runners.server import serve as run_server

    try:
        run_server(config_path, config, url, processes or config.server.processes)
    finally:
        supervisor.stop()
        if private is not None:
            private.stop()


class _WorkerSupervisor:
    """Keeps N `hookbuild worker` processes running; a worker that dies is started again."""

    def __init__(
        self, config_path: str, redis_url: str, count: int, logging_options: list[str]
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "runners.cli",
            *logging_options,  # workers log as `up` does
            "worker",
            "--config",
            config_path,
            "--redis-url",
            redis_url,
            "--engine-announced",
        ]
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self.processes = [spawn(self.command) for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for index, process in enumerate(self.processes):
                if process.poll() is not None and not self._stopping.is_set():
                    log.warning("worker exited; starting another", exit_code=process.returncode)
                    self.processes[index] = spawn(self.command)

    def stop(self, grace: float = 30.0) -> None:
        self._stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


@main.command()
@config_option
@redis_option
@processes_option
def serve(config_path: str, redis_url: str | None, processes: int | None) -> None:
    """Run the webhook receiver, the API and the dashboard alone, without build workers."""
    from runners.server import serve as run_server

    config = _load(config_path, long_running=True)
    _connect(config, redis_url)  # fail now, clearly, if Redis is not there
    url = _redis_url(config, redis_url)
    run_server(config_path, config, url, processes or config.server.processes)


@main.command()
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
    from runners.engineprobe import announce_engine
    from runners.worker import run_worker

    config = _load(config_path, long_running=True)
    if not engine_announced:
        announce_engine(os.environ)
    run_worker(config, _connect(config, redis_url), os.environ, name=name, burst=burst)


@main.command()
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
    from runners.queue import BuildQueue

    config = _load(config_path, reading_only=True)
    queue = BuildQueue.for_config(_connect(config, redis_url), config)
    query = BuildQuery(repository, BuildStatus(status) if status else None, ref)
    records = queue.store.find(query, limit=limit)

    def state(record: BuildRecord) -> str:
        position = queue.position(record)
        return f"{record.status.value}(#{position})" if position else record.status.value

    if not records:
        _echo(
            "no builds match these filters" if any((repository, status, ref)) else "no builds yet"
        )
        return
    for line in cliviews.table(cliviews.build_rows(records, state)):
        click.echo(line)


@main.command()
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
    from builder.trigger import TriggerRequestError, checked_sha
    from runners.manual import request_build
    from runners.queue import BuildQueue

    config = _load(config_path)
    configured = config.repository_named(repository)
    if configured is None:
        raise click.ClickException(f"no repository {repository!r} in {config_path}")
    connection = _connect(config, redis_url)
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
        _echo(f"{build_id} {outcome.ref} {outcome.sha[:7]}")
    if follow:
        client = _log_client(config, server, token)
        try:
            sys.exit(max(_follow(client, build_id) for build_id in outcome.builds))
        except LogStreamError as exc:
            raise click.ClickException(printable_lines(str(exc))) from exc


@main.command()
@config_option
@click.option("--repo", "repository", required=True, help="The repository's name in the config.")
@click.option("--ref", required=True, help="refs/heads/NAME, refs/tags/NAME, or a branch name.")
@click.option(
    "--sha",
    default=None,
    help="The commit (default: none; the answer shows <commit> where it would stand).",
)
@click.option(
    "--changed", multiple=True, help="A file the push changed (repeat); checks path filters."
)
@click.option("--message", default=None, help="The head commit's message; checks [skip ci].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def preview(
    config_path: str,
    repository: str,
    ref: str,
    sha: str | None,
    changed: tuple[str, ...],
    message: str | None,
    as_json: bool,
) -> None:
    """Show what a push would build: per image, the rules that matched and their tags, and
    for each rule that did not match, why. Builds nothing, needs no running service."""
    import json

    from builder.trigger import TriggerRequestError
    from webhooks.preview import preview as explain

    config = _load(config_path, reading_only=True)
    try:
        answer = explain(config, repository, ref, sha, list(changed) if changed else None, message)
    except TriggerRequestError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for line in cliviews.preview_lines(repository, answer, sha_given=sha is not None):
        _echo(line)


@main.command()
@config_option
@redis_option
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def events(config_path: str, redis_url: str | None, limit: int) -> None:
    """List recent webhook deliveries, newest first, and what came of each.

    Per delivery: when it came (UTC), the forge, its event and delivery id, the HTTP
    status the forge got, the outcome (built, skipped, ignored, duplicate, rejected,
    error), its repository and ref, and its builds or why there are none."""
    from runners.deliverylog import DeliveryLog, with_build_outcomes

    config = _load(config_path, reading_only=True)
    connection = _connect(config, redis_url)
    store = BuildStore(connection)
    recent = DeliveryLog(connection).recent(limit)
    if not recent:
        click.echo(cliviews.NO_DELIVERIES)
        return
    for line in cliviews.table(cliviews.event_rows(with_build_outcomes(recent, store))):
        click.echo(line)


@main.command()
@config_option
@redis_option
@click.argument("build_id")
def cancel(config_path: str, redis_url: str | None, build_id: str) -> None:
    """Cancel a build wherever it is: waiting, queued, or running (it is stopped on the engine)."""
    from runners.queue import BuildQueue

    config = _load(config_path, reading_only=True)
    queue = BuildQueue.for_config(_connect(config, redis_url), config)
    record = queue.cancel(build_id, "cancelled with hookbuild cancel")
    if record is None:
        raise click.ClickException(f"no build {build_id!r}")
    _echo(f"{record.id} {record.status.value}" + (f": {record.error}" if record.error else ""))


EXIT_CODES = {
    BuildStatus.SUCCEEDED: 0,
    BuildStatus.SKIPPED: 0,  # nothing to build is not a failure
    BuildStatus.FAILED: 1,
    BuildStatus.CANCELLED: 2,
}


@main.command()
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
    client = _log_client(_load(config_path, reading_only=True), server, token)
    try:
        if not follow:
            colours = _is_terminal()
            for line in client.log(build_id):
                click.echo(printable_log_line(line, colours))
            return
        sys.exit(_follow(client, build_id))
    except LogStreamError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc


def _log_client(config: Config, server: str | None, token: str | None) -> LogClient:
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


def _echo(text: str, err: bool = False) -> None:
    """Print text that holds untrusted parts (names, refs, reasons from payloads and
    builds) with every control character escaped (builder.printable)."""
    click.echo(printable(text), err=err)


def _is_terminal() -> bool:
    """Colours in a build's output are kept only for a terminal."""
    return sys.stdout.isatty()


def _is_step(line: str) -> bool:
    return bool(CLASSIC_STEP.match(line) or BUILDKIT_STEP.match(line))


def _follow(client: LogClient, build_id: str) -> int:
    """Print a build's log as it grows, every line once; return the exit code its end
    calls for. Build steps stand out on a terminal."""

    colours = _is_terminal()

    def line(text: str) -> None:
        text = printable_log_line(text, colours)
        click.echo(click.style(text, bold=True) if _is_step(text) else text)

    ended = client.follow(build_id, line)
    if ended not in {s.value for s in BuildStatus}:
        _echo(f"build {build_id} is gone (expired or removed)", err=True)
        return 1
    status = BuildStatus(ended)
    error = client.build(build_id).get("error")
    if error:
        _echo(f"build {build_id} {status.value}: {error}", err=True)
    return EXIT_CODES.get(status, 1)


if __name__ == "__main__":
    main()
