"""The JSON API over build records: `GET /api/builds`, `/api/builds/{id}`, its log."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from runners.deliverylog import DeliveryLog, with_build_outcomes
from runners.records import BuildStore

MAX_PAGE = 200


def _int(value: str | None, default: int, low: int, high: int) -> int:
    if value is None or not value.lstrip("-").isdigit():
        return default
    return max(low, min(high, int(value)))


class BuildsApi:
    def __init__(self, store: BuildStore, deliveries: DeliveryLog) -> None:
        self.store = store
        self.deliveries = deliveries

    async def list_deliveries(self, request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), 50, 1, MAX_PAGE)
        events = await run_in_threadpool(
            lambda: with_build_outcomes(self.deliveries.recent(limit), self.store)
        )
        return JSONResponse({"events": events, "limit": limit})

    async def list_builds(self, request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), 50, 1, MAX_PAGE)
        offset = _int(request.query_params.get("offset"), 0, 0, 10**9)
        repository = request.query_params.get("repository") or None
        records = await run_in_threadpool(self.store.recent, limit, offset, repository)
        return JSONResponse(
            {"builds": [r.to_json() for r in records], "limit": limit, "offset": offset}
        )

    async def get_build(self, request: Request) -> Response:
        record = await run_in_threadpool(self.store.get, request.path_params["build_id"])
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        return JSONResponse(record.to_json())

    async def get_log(self, request: Request) -> Response:
        build_id = request.path_params["build_id"]
        record = await run_in_threadpool(self.store.get, build_id)
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        start = _int(request.query_params.get("start"), 0, 0, 10**9)
        lines = await run_in_threadpool(self.store.log_lines, build_id, start)
        return PlainTextResponse("".join(f"{line}\n" for line in lines))
