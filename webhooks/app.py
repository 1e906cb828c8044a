"""The Starlette application, wired declaratively in one factory."""

from __future__ import annotations

from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from builder.config import Config
from runners.deliverylog import DeliveryLog
from runners.queue import BuildQueue
from webhooks.api import BuildsApi
from webhooks.forges import ForgeDriver, default_drivers
from webhooks.preview import PreviewEndpoint
from webhooks.receiver import WebhookReceiver
from webhooks.trigger import TriggerEndpoint


def create_app(
    config: Config, connection: Redis, drivers: Mapping[str, ForgeDriver] | None = None
) -> Starlette:
    queue = BuildQueue.for_config(connection, config)
    deliveries = DeliveryLog(connection)
    receiver = WebhookReceiver(config, queue, drivers or default_drivers(), deliveries)
    api = BuildsApi(queue, deliveries, config.server)
    trigger = TriggerEndpoint(config, queue)

    async def healthz(_request: Request) -> Response:
        try:
            await run_in_threadpool(connection.ping)
        except RedisError as exc:
            return JSONResponse({"redis": f"unreachable: {exc}"}, 503)
        return JSONResponse({"redis": "ok"})

    return Starlette(
        routes=[
            Route("/hooks/{forge}", receiver.handle, methods=["POST"]),
            Route("/trigger/{rest:path}", trigger.handle, methods=["POST"]),
            Route("/api/builds", api.reads(api.list_builds), methods=["GET"]),
            Route("/api/builds/{build_id}", api.reads(api.get_build), methods=["GET"]),
            Route("/api/builds/{build_id}/log", api.reads(api.get_log), methods=["GET"]),
            Route("/api/builds/{build_id}/cancel", api.changes(api.cancel), methods=["POST"]),
            Route("/api/builds/{build_id}/rebuild", api.changes(api.rebuild), methods=["POST"]),
            Route("/api/events", api.reads(api.list_deliveries), methods=["GET"]),
            Route("/api/preview", PreviewEndpoint(config).handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
    )
