"""`POST /hooks/{forge}`: verify a delivery, match it against the rules, queue its builds.

The answer comes within milliseconds: no git or docker work happens here. Benign events
(pings, deletions, pushes no rule matches) get 200 with the reason, because forges disable
webhooks that keep failing; only a request we must refuse gets 4xx, and only a failure to
record an accepted delivery gets 5xx, so that the forge or a person can redeliver.
"""

from __future__ import annotations

import contextlib
import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from builder.config import Config
from builder.plan import BuildPlan
from builder.rules import decide
from runners.deliverylog import DeliveryLog, DeliveryRecord
from runners.intakebatch import IntakeBatcher
from runners.queue import BuildQueue, Submitted
from runners.servicelog import get_logger
from webhooks.body import read_limited
from webhooks.bounds import (
    DELIVERY_ID_CHARS,
    EVENT_CHARS,
    FORGE_CHARS,
    NAME_CHARS,
    REASON_CHARS,
    clip,
    clip_optional,
)
from webhooks.errors import (
    DeliveryRejected,
    MalformedPayload,
    SignatureInvalid,
    UnknownRepository,
)
from webhooks.forges.base import ForgeDriver

log = get_logger(__name__)

# With private reads, the answer to an unknown repository is this one, the same as to a bad
# signature, so that an anonymous caller cannot list the configured repositories.
NOT_VERIFIED = "the delivery could not be verified: check the webhook's secret"
# Verified against on an unknown repository, so that it costs what a bad signature costs.
_DECOY_SECRET = secrets.token_hex(16)


class Line(enum.Enum):
    """What is left to do about a delivery's line in the delivery log."""

    TO_WRITE = "to write"
    WRITTEN = "written"  # with the delivery's builds, in their one call
    UNWRITABLE = "unwritable"  # Redis is unreachable: writing it would fail the same way


@dataclass(frozen=True)
class Answer:
    """What a delivery gets back, and what is left to do about its line."""

    response: JSONResponse
    line: Line = Line.TO_WRITE


class WebhookReceiver:
    def __init__(
        self,
        config: Config,
        queue: BuildQueue,
        drivers: Mapping[str, ForgeDriver],
        deliveries: DeliveryLog,
        intake: IntakeBatcher | None = None,
    ) -> None:
        """`intake`: the intake script on an asyncio client, so a delivery is written
        without a thread, with those that come at the same time; without it, deliveries are
        written from Starlette's thread pool."""
        self.config = config
        self.queue = queue
        self.drivers = drivers
        self.deliveries = deliveries
        self.intake = intake

    async def handle(self, request: Request) -> JSONResponse:
        forge = request.path_params["forge"]
        driver = self.drivers.get(forge)
        if driver is None:
            known = ", ".join(sorted(self.drivers))
            return JSONResponse(
                {"error": f"unknown forge {clip(forge, FORGE_CHARS)!r}; hooks exist for {known}"},
                404,
            )
        # The receiver's own record of the delivery, filled in as it is read; the queue
        # writes a copy of it with the builds, and this one only where that did not happen.
        note = DeliveryRecord(forge=forge)
        try:
            answer = await self._receive(forge, driver, request, note)
        except DeliveryRejected as exc:
            note.reason = clip(str(exc), REASON_CHARS)
            answer = Answer(self._rejected(exc, note.reason))
        response = answer.response
        note.status = response.status_code
        if answer.line is Line.TO_WRITE:
            await run_in_threadpool(self._log, note)
        log.info(
            "delivery",
            forge=forge,
            forge_event=note.event,
            delivery_id=note.delivery_id,
            repository=note.repository,
            status=note.status,
            outcome=note.outcome,
            reason=note.reason,
            builds=note.builds,
        )
        return response

    def _rejected(self, exc: DeliveryRejected, reason: str) -> JSONResponse:
        if not self.config.server.public and isinstance(exc, SignatureInvalid | UnknownRepository):
            return JSONResponse({"error": NOT_VERIFIED}, SignatureInvalid.status_code)
        return JSONResponse({"error": reason}, exc.status_code)

    def _log(self, note: DeliveryRecord) -> None:
        # The answer matters more than its record.
        with contextlib.suppress(RedisError):
            self.deliveries.add(note)

    async def _receive(
        self, forge: str, driver: ForgeDriver, request: Request, note: DeliveryRecord
    ) -> Answer:
        body = await read_limited(request, self.config.server)
        headers = request.headers
        event = driver.event_name(headers)
        # Bounded before anything stores, logs or echoes them (the delivery id is also the
        # dedup key); the event is used whole only to pick the parser.
        note.event = clip_optional(event, EVENT_CHARS)
        note.delivery_id = clip_optional(driver.delivery_id(headers), DELIVERY_ID_CHARS)
        if not event:
            raise MalformedPayload(f"no event header: is this a {forge} webhook?")
        pinged = event in driver.ping_events
        if pinged and not body.strip():
            return self._ignored(note, f"{note.event}: the webhook is set up")
        payload = _decode(body)
        # The secret belongs to a repository, so the payload is decoded to find it; nothing
        # in it is acted on until the signature over the raw bytes is verified.
        name = driver.repository_name(event, payload)
        note.repository = clip_optional(name, NAME_CHARS)
        if name is None:
            if pinged:
                return self._ignored(note, f"{note.event} names no repository; nothing to verify")
            raise MalformedPayload(f"the {note.event} payload names no repository")
        repository = self.config.repository(forge, name)
        if repository is None:
            if not self.config.server.public:
                with contextlib.suppress(SignatureInvalid):
                    driver.verify(headers, body, _DECOY_SECRET)
            raise UnknownRepository(f"no {forge} repository {note.repository!r} in the config")
        driver.verify(headers, body, repository.secret, repository.signing_token)

        parsed = driver.parse(event, payload, note.delivery_id)
        if parsed.ignored:
            return self._ignored(note, parsed.ignored)
        if parsed.events:
            note.ref, note.sha = parsed.events[0].ref, parsed.events[0].sha
        plans: list[BuildPlan] = []
        skipped: list[str] = []
        for push in parsed.events:
            decision = decide(repository, push)
            plans.extend(decision.plans)
            if decision.skipped:
                skipped.append(decision.skipped)
        if not plans:
            note.outcome, note.reason = "skipped", "; ".join(skipped) or "nothing to build"
            return Answer(JSONResponse({"builds": [], "skipped": note.reason}))
        tags_once = driver.tags_once
        if tags_once or self.intake is None:
            return await run_in_threadpool(
                self._enqueue, forge, note.delivery_id, plans, skipped, tags_once, note
            )
        if skipped:
            note.reason = "; ".join(skipped)
        try:
            submitted = await self.queue.submit_delivery_async(
                self.intake, plans, forge, note.delivery_id, note
            )
        except RedisError as exc:
            return self._unqueued(note, exc)
        return self._answer(submitted, skipped, note)

    @staticmethod
    def _ignored(note: DeliveryRecord, reason: str) -> Answer:
        note.outcome, note.reason = "ignored", reason
        return Answer(JSONResponse({"builds": [], "ignored": reason}))

    def _enqueue(
        self,
        forge: str,
        delivery_id: str | None,
        plans: list[BuildPlan],
        skipped: list[str],
        tags_once: bool,
        note: DeliveryRecord,
    ) -> Answer:
        claimed: list[tuple[str, str, str]] = []
        try:
            if tags_once:
                plans = self._first_announcement_only(forge, plans, skipped, claimed)
            if skipped:
                note.reason = "; ".join(skipped)
            try:
                submitted = self.queue.submit_delivery(plans, forge, delivery_id, note)
            except Exception:
                for repository, ref, sha in claimed:
                    self.queue.ledger.release_ref(forge, repository, ref, sha)
                raise
        except RedisError as exc:
            return self._unqueued(note, exc)
        return self._answer(submitted, skipped, note)

    @staticmethod
    def _unqueued(note: DeliveryRecord, exc: RedisError) -> Answer:
        note.outcome = "error"
        note.reason = clip(f"could not queue the builds: {exc}", REASON_CHARS)
        # Writing the delivery's line would wait out the client's retries a second time
        # (~4 s each here) and fail the same way: the answer would come after Gitea's 5 s
        # timeout, GitHub's 10 s soon after. The service log still has the line. A write
        # Redis refused (a key of the wrong type, out of memory) leaves it reachable.
        unreachable = isinstance(exc, RedisConnectionError | RedisTimeoutError)
        response = JSONResponse(
            {"error": f"could not queue the builds ({exc}); redeliver the webhook"}, 503
        )
        return Answer(response, Line.UNWRITABLE if unreachable else Line.TO_WRITE)

    @staticmethod
    def _answer(submitted: Submitted, skipped: list[str], note: DeliveryRecord) -> Answer:
        note.builds = submitted.builds
        if submitted.duplicate:
            note.outcome, note.reason = "duplicate", "this delivery id was received before"
            return Answer(JSONResponse({"builds": submitted.builds, "duplicate": True}))
        note.outcome = "built" if submitted.builds else "skipped"
        answer: dict[str, Any] = {"builds": submitted.builds}
        if skipped:
            answer["skipped"] = note.reason
        response = JSONResponse(answer, 202 if submitted.builds else 200)
        return Answer(response, Line.WRITTEN if submitted.logged else Line.TO_WRITE)

    def _first_announcement_only(
        self,
        forge: str,
        plans: list[BuildPlan],
        skipped: list[str],
        claimed: list[tuple[str, str, str]],
    ) -> list[BuildPlan]:
        """Drop tag builds that another delivery (the tag's push, or its create) already made."""
        kept: list[BuildPlan] = []
        decided: dict[tuple[str, str], bool] = {}
        for plan in plans:
            key = (plan.ref, plan.sha)
            if not plan.ref.startswith("refs/tags/"):
                kept.append(plan)
                continue
            if key not in decided:
                holder = self.queue.ledger.claim_ref(forge, plan.repository, plan.ref, plan.sha)
                decided[key] = holder is None
                if holder is None:
                    claimed.append((plan.repository, plan.ref, plan.sha))
                else:
                    skipped.append(f"{plan.ref} at {plan.sha[:7]} is already built by {holder}")
            if decided[key]:
                kept.append(plan)
        return kept


def _decode(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)  # twice as fast as json on a forge's 7 KB payloads
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(
            f"body is not JSON ({exc}); set the webhook's content type to application/json"
        ) from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("body is JSON but not an object")
    return payload
