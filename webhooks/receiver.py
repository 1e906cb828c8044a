"""`POST /hooks/{forge}`: verify a delivery, match it against the rules, queue its builds.

The answer comes within milliseconds: no git or docker work happens here. Benign events
(pings, deletions, pushes no rule matches) get 200 with the reason, because forges disable
webhooks that keep failing; only a request we must refuse gets 4xx, and only a failure to
record an accepted delivery gets 5xx, so that the forge or a person can redeliver.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from builder.config import Config
from builder.plan import BuildPlan
from builder.rules import decide
from runners.queue import BuildQueue
from webhooks.body import read_limited
from webhooks.errors import DeliveryRejected, MalformedPayload, UnknownRepository
from webhooks.forges.base import ForgeDriver


class WebhookReceiver:
    def __init__(
        self, config: Config, queue: BuildQueue, drivers: Mapping[str, ForgeDriver]
    ) -> None:
        self.config = config
        self.queue = queue
        self.drivers = drivers

    async def handle(self, request: Request) -> JSONResponse:
        forge = request.path_params["forge"]
        driver = self.drivers.get(forge)
        if driver is None:
            known = ", ".join(sorted(self.drivers))
            return JSONResponse({"error": f"unknown forge {forge!r}; hooks exist for {known}"}, 404)
        try:
            return await self._receive(forge, driver, request)
        except DeliveryRejected as exc:
            return JSONResponse({"error": str(exc)}, exc.status_code)

    async def _receive(self, forge: str, driver: ForgeDriver, request: Request) -> JSONResponse:
        body = await read_limited(request, self.config.server.max_body_bytes)
        headers = request.headers
        event = driver.event_name(headers)
        if not event:
            raise MalformedPayload(f"no event header: is this a {forge} webhook?")
        payload = _decode(body)
        # The secret belongs to a repository, so the payload is decoded to find it; nothing
        # in it is acted on until the signature over the raw bytes is verified.
        name = driver.repository_name(event, payload)
        if name is None:
            if event in ("ping", "diagnostics:ping"):
                return JSONResponse({"ignored": f"{event} names no repository; nothing to verify"})
            raise MalformedPayload(f"the {event} payload names no repository")
        repository = self.config.repository(forge, name)
        if repository is None:
            raise UnknownRepository(f"no {forge} repository {name!r} in the config")
        driver.verify(headers, body, repository.secret)

        delivery_id = driver.delivery_id(headers)
        parsed = driver.parse(event, payload, delivery_id)
        if parsed.ignored:
            return JSONResponse({"builds": [], "ignored": parsed.ignored})
        plans: list[BuildPlan] = []
        skipped: list[str] = []
        for push in parsed.events:
            decision = decide(repository, push)
            plans.extend(decision.plans)
            if decision.skipped:
                skipped.append(decision.skipped)
        if not plans:
            return JSONResponse({"builds": [], "skipped": "; ".join(skipped) or "nothing to build"})
        return await run_in_threadpool(self._enqueue, forge, delivery_id, plans, skipped)

    def _enqueue(
        self, forge: str, delivery_id: str | None, plans: list[BuildPlan], skipped: list[str]
    ) -> JSONResponse:
        ledger = self.queue.ledger
        try:
            if delivery_id:
                earlier = ledger.claim(forge, delivery_id)
                if earlier is not None:
                    return JSONResponse({"builds": earlier, "duplicate": True})
            try:
                ids = self.queue.submit(plans, (forge, delivery_id) if delivery_id else None)
            except Exception:
                if delivery_id:
                    ledger.release(forge, delivery_id)
                raise
        except RedisError as exc:
            return JSONResponse(
                {"error": f"could not queue the builds ({exc}); redeliver the webhook"}, 503
            )
        answer: dict[str, Any] = {"builds": ids}
        if skipped:
            answer["skipped"] = "; ".join(skipped)
        return JSONResponse(answer, 202)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayload(
            f"body is not JSON ({exc}); set the webhook's content type to application/json"
        ) from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("body is JSON but not an object")
    return payload
