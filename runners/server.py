"""Serve the app (receiver, API, dashboard): in this process, or in several that share one
listening socket, for more webhooks a second than one Python process can take.

Both serve with webhooks/connections.py's protocol: slow or half-open clients are timed
out and the connections per process are capped. Several processes are uvicorn's own
supervisor: each is started fresh (spawn) and builds the app from the environment this
process leaves it (`app_from_environment`), and each dies with this one, even on SIGKILL.

With the CLI's command modules, this is where the HTTP side is wired to the rest
(tests/test_layers.py): `app_from_environment` is each serving process's entry point.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from builder.config import Config
from runners import redisclient, servicelog
from runners.children import die_with_parent
from runners.configload import load_config_compact
from webhooks.app import create_app
from webhooks.connections import ensure_descriptors, guarded_config
from webhooks.forges import DRIVERS

CONFIG_ENV = "HOOKBUILD_SERVE_CONFIG"
REDIS_ENV = "HOOKBUILD_SERVE_REDIS_URL"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a captured signal once it has shut down, which would end
        # `hookbuild up` before it stops its workers and its Redis. Here a signal means
        # "shut down and return".
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config_path: str, config: Config, redis_url: str, processes: int = 1) -> None:
    """Serve until SIGINT or SIGTERM, then return (so callers can clean up)."""
    host, port = config.server.host, config.server.port
    ensure_descriptors(config.server.max_connections)
    if processes <= 1:
        connection = redisclient.from_url(redis_url, retries=redisclient.ANSWERING_RETRIES)
        app = _frozen(create_app(config, connection))
        settings = guarded_config(
            app, config.server, host=host, port=port, log_config=None, access_log=False
        )
        _Server(settings).run()
        return
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    os.environ[REDIS_ENV] = redis_url
    os.environ[servicelog.FORMAT_ENV], os.environ[servicelog.LEVEL_ENV] = servicelog.current()
    settings = guarded_config(
        "runners.server:app_from_environment",
        config.server,
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_config=None,
        access_log=False,
    )
    Multiprocess(settings, sockets=[settings.bind_socket()]).run()


def app_from_environment() -> Starlette:
    """One serving process's app, from what `serve` left in the environment."""
    die_with_parent(signal.SIGTERM)
    servicelog.configure(
        os.environ.get(servicelog.FORMAT_ENV, "text"), os.environ.get(servicelog.LEVEL_ENV, "info")
    )
    config = load_config_compact(os.environ[CONFIG_ENV], os.environ, forges=DRIVERS)
    connection = redisclient.from_url(os.environ[REDIS_ENV], retries=redisclient.ANSWERING_RETRIES)
    return _frozen(create_app(config, connection))


def _frozen(app: Starlette) -> Starlette:
    """Move what exists now (the config, thousands of repositories' worth) out of the
    garbage collector's view: it lives as long as the process, and walking it on every
    full collection showed as latency spikes under load (bench/intake.py, bench/scale.py)."""
    gc.collect()
    gc.freeze()
    return app
