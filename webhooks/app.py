"""The Starlette application, wired declaratively in one factory."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from builder.build.backend import connect_engine
from builder.config import Config
from builder.errors import HookbuildError
from runners.aredis import async_twin
from runners.deliverylog import DeliveryLog
from runners.intake import INTAKE_SCRIPT
from runners.intakebatch import IntakeBatcher
from runners.queue import BuildQueue
from webhooks import openapi
from webhooks.api import BuildsApi
from webhooks.auth import refuse_read
from webhooks.bounds import clip
from webhooks.dashboard import STATIC, Dashboard
from webhooks.errors import RequestRejected
from webhooks.forges import ForgeDriver, default_drivers
from webhooks.headers import SecurityHeaders
from webhooks.metrics import render_metrics
from webhooks.preview import PreviewEndpoint
from webhooks.receiver import WebhookReceiver
from webhooks.trigger import TriggerEndpoint

PATH_CHARS = 256  # an unknown path, as echoed in its 404


def _ping_docker(environ: Mapping[str, str]) -> None:
    engine = connect_engine(environ, timeout=5)
    try:
        engine.ping()
    finally:
        engine.close()


async def _not_found(request: Request, _exc: Exception) -> Response:
    # API clients get our JSON error shape, never Starlette's plain-text page.
    return JSONResponse({"error": f"no such endpoint: {clip(request.url.path, PATH_CHARS)}"}, 404)


async def _not_allowed(request: Request, _exc: Exception) -> Response:
    return JSONResponse(
        {"error": f"{request.method} is not allowed on {clip(request.url.path, PATH_CHARS)}"}, 405
    )


async def _rejected(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestRejected)  # the handler is registered for it alone
    return JSONResponse({"error": str(exc)}, exc.status_code)


def _unhealthy(exc: Exception, detailed: bool) -> dict[str, Any]:
    if detailed:
        return {"ok": False, "error": str(exc)}
    return {"ok": False, "error": "unreachable (the token shows why)"}


def create_app(
    config: Config,
    connection: Redis,
    drivers: Mapping[str, ForgeDriver] | None = None,
    docker_environ: Mapping[str, str] | None = None,
) -> Starlette:
    """`docker_environ`: where /healthz finds the Docker engine (default: this process's)."""
    docker_environ = dict(os.environ) if docker_environ is None else docker_environ
    queue = BuildQueue.for_config(connection, config)
    deliveries = DeliveryLog(connection)
    receiver = WebhookReceiver(config, queue, drivers or default_drivers(), deliveries)
    api = BuildsApi(queue, deliveries, config.server)
    trigger = TriggerEndpoint(config, queue)
    dashboard = Dashboard(config, queue, deliveries)

    async def healthz(request: Request) -> Response:
        """Redis and the Docker engine (this process's DOCKER_HOST) reachable, with timings.

        Open to all, for load balancers, even with private reads; then the errors (which
        name hosts, ports and sockets) are told only to a caller with the token."""
        detailed = refuse_read(request, config.server) is None
        answer: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            await run_in_threadpool(connection.ping)
            answer["redis"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except RedisError as exc:
            answer["redis"] = _unhealthy(exc, detailed)
        started = time.perf_counter()
        try:
            await run_in_threadpool(_ping_docker, docker_environ)
            answer["docker"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except HookbuildError as exc:
            answer["docker"] = _unhealthy(exc, detailed)
        healthy = answer["redis"]["ok"] and answer["docker"]["ok"]
        return JSONResponse(answer, 200 if healthy else 503)

    async def openapi_document(_request: Request) -> Response:
        return JSONResponse(openapi.spec())

    async def metrics(_request: Request) -> Response:
        body = await run_in_threadpool(render_metrics, connection)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # The asyncio client belongs to the server's event loop, so it is made here. An app
        # run without its lifespan (a bare TestClient) writes deliveries from threads.
        aconnection = async_twin(connection)
        receiver.intake = IntakeBatcher(aconnection.register_script(INTAKE_SCRIPT))
        try:
            yield
        finally:
            receiver.intake = None
            await aconnection.aclose()

    return Starlette(
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: _not_found, 405: _not_allowed, RequestRejected: _rejected},
        routes=[
            Route("/", api.reads(dashboard.repositories), methods=["GET"]),
            Route("/builds", api.reads(dashboard.builds), methods=["GET"]),
            Route("/builds/{build_id}", api.reads(dashboard.build), methods=["GET"]),
            Route("/deliveries", api.reads(dashboard.deliveries_page), methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            Route("/hooks/{forge}", receiver.handle, methods=["POST"]),
            Route("/trigger/{rest:path}", trigger.handle, methods=["POST"]),
            Route("/api/builds", api.reads(api.list_builds), methods=["GET"]),
            Route("/api/builds/{build_id}", api.reads(api.get_build), methods=["GET"]),
            Route("/api/builds/{build_id}/log", api.reads(api.get_log), methods=["GET"]),
            Route("/api/builds/{build_id}/cancel", api.changes(api.cancel), methods=["POST"]),
            Route("/api/builds/{build_id}/rebuild", api.changes(api.rebuild), methods=["POST"]),
            Route("/api/events", api.reads(api.list_deliveries), methods=["GET"]),
            Route("/api/openapi.json", api.reads(openapi_document), methods=["GET"]),
            Route("/api/preview", api.reads(PreviewEndpoint(config).handle), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", api.reads(metrics), methods=["GET"]),
            Route("/badge/{rest:path}", api.reads(api.badge), methods=["GET"]),
        ],
    )
