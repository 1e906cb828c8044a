"""The JSON API over builds and deliveries: list, show, log, cancel, rebuild, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from builder.config import ServerConfig
from builder.plan import BuildPlan
from runners.deliverylog import DeliveryLog, with_build_outcomes
from runners.queue import BuildQueue
from runners.records import LOG_PAGE, BuildQuery, BuildStatus
from webhooks import badge
from webhooks.auth import refuse_change, refuse_read
from webhooks.follow import follow
from webhooks.params import number, query_int

MAX_PAGE = 200
MAX_OFFSET = 10**9
Endpoint = Callable[[Request], Awaitable[Response]]


def build_query(params: Mapping[str, str]) -> BuildQuery:
    """`?repository=&status=&ref=` as a query; ValueError names an unknown status."""
    status = params.get("status") or None
    if status is not None and status not in {s.value for s in BuildStatus}:
        known = ", ".join(s.value for s in BuildStatus)
        raise ValueError(f"unknown status {status!r}: use one of {known}")
    return BuildQuery(
        repository=params.get("repository") or None,
        status=BuildStatus(status) if status else None,
        ref=params.get("ref") or None,
    )


class BuildsApi:
    def __init__(self, queue: BuildQueue, deliveries: DeliveryLog, server: ServerConfig) -> None:
        self.queue = queue
        self.store = queue.store
        self.deliveries = deliveries
        self.server = server

    def reads(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            return refuse_read(request, self.server) or await endpoint(request)

        return guarded

    def changes(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            return refuse_change(request, self.server) or await endpoint(request)

        return guarded

    async def list_builds(self, request: Request) -> Response:
        limit = query_int(request.query_params, "limit", 50, 1, MAX_PAGE)
        offset = query_int(request.query_params, "offset", 0, 0, MAX_OFFSET)
        try:
            query = build_query(request.query_params)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)

        def page() -> list[dict[str, Any]]:
            return [self.queue.describe(r) for r in self.store.find(query, limit, offset)]

        return JSONResponse(
            {"builds": await run_in_threadpool(page), "limit": limit, "offset": offset}
        )

    async def get_build(self, request: Request) -> Response:
        record = await run_in_threadpool(self.store.get, request.path_params["build_id"])
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        return JSONResponse(await run_in_threadpool(self.queue.describe, record))

    async def get_log(self, request: Request) -> Response:
        build_id = request.path_params["build_id"]
        record = await run_in_threadpool(self.store.get, build_id)
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        start = query_int(request.query_params, "start", 0, 0, MAX_OFFSET)
        if request.query_params.get("follow") in ("true", "1", "yes"):
            last = request.headers.get("last-event-id", "")
            if last:  # a reconnect resumes after the last line it got
                start = number(last, "Last-Event-ID", 0, MAX_OFFSET - 1) + 1
            return StreamingResponse(
                follow(self.store, build_id, start),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return StreamingResponse(
            self._log_text(build_id, start), media_type="text/plain; charset=utf-8"
        )

    async def _log_text(self, build_id: str, start: int) -> AsyncIterator[str]:
        """The log in pages (LRANGE), each sent before the next is read: a 200 MB log
        never sits whole in the server's memory, however many read it at once."""
        while True:
            lines = await run_in_threadpool(
                self.store.log_lines, build_id, start, start + LOG_PAGE - 1
            )
            if lines:
                yield "".join(f"{line}\n" for line in lines)
            if len(lines) < LOG_PAGE:
                return
            start += len(lines)

    async def badge(self, request: Request) -> Response:
        path = request.path_params["rest"]
        if not path.endswith(".svg") or "/" not in path:
            return JSONResponse({"error": "use /badge/{repository}/{ref}.svg"}, 404)
        repository, _, ref = path[: -len(".svg")].rpartition("/")

        def last_status() -> str:
            last = self.store.find(BuildQuery(repository=repository, ref=ref), limit=1)
            return last[0].status.value if last else "unknown"

        status = await run_in_threadpool(last_status)
        return Response(
            badge.render("build", status), media_type="image/svg+xml", headers=badge.HEADERS
        )

    async def cancel(self, request: Request) -> Response:
        build_id = request.path_params["build_id"]
        record = await run_in_threadpool(self.queue.cancel, build_id, "cancelled through the API")
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        return JSONResponse(await run_in_threadpool(self.queue.describe, record))

    async def rebuild(self, request: Request) -> Response:
        record = await run_in_threadpool(self.store.get, request.path_params["build_id"])
        if record is None:
            return JSONResponse({"error": "no such build"}, 404)
        if record.plan is None:
            return JSONResponse({"error": "this build kept no plan to run again"}, 409)
        plan = BuildPlan.from_dict({**record.plan, "delivery_id": None, "pusher": "rebuild"})
        [build_id] = await run_in_threadpool(self.queue.submit, [plan])
        return JSONResponse({"builds": [build_id], "rebuild_of": record.id}, 202)

    async def list_deliveries(self, request: Request) -> Response:
        limit = query_int(request.query_params, "limit", 50, 1, MAX_PAGE)
        events = await run_in_threadpool(
            lambda: with_build_outcomes(self.deliveries.recent(limit), self.store)
        )
        return JSONResponse({"events": events, "limit": limit})
