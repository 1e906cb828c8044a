"""Deliveries that arrive together are written by one call of the intake script, on the
real Redis, and each still gets its own answer: its builds, a duplicate's first builds, or
its own error while the others are written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from builder.plan import BuildPlan
from runners.aredis import async_twin
from runners.deliverylog import DeliveryRecord
from runners.intake import INTAKE_SCRIPT
from runners.intakebatch import IntakeBatcher
from runners.queue import QUEUE_NAME, BuildQueue, Submitted
from runners.records import BuildStore
from tests.services import script_calls

Outcome = Submitted | BaseException


def plan(repository: str, branch: str) -> BuildPlan:
    return BuildPlan(
        forge="github",
        repository=repository,
        clone_url=f"file:///nowhere/{repository}",
        ref=f"refs/heads/{branch}",
        sha="a" * 40,
        image=f"localhost:5000/{repository}",
        tags=(branch,),
    )


def deliver_together(
    redis: Redis,
    deliveries: list[tuple[BuildPlan, str]],
    max_batch: int = 64,
    before: Callable[[BuildQueue, IntakeBatcher], Awaitable[None]] | None = None,
    script_on: Callable[[], AsyncRedis] | None = None,
) -> tuple[list[Outcome], int]:
    """Submit every (plan, delivery id) at once on one event loop, as a serving process
    does, with the script run on `script_on()` (default: `redis`'s asyncio twin); their
    outcomes, and how many script calls `redis` saw for them."""
    queue = BuildQueue(redis)

    async def run() -> tuple[list[Outcome], int]:
        client = script_on() if script_on else async_twin(redis)
        batcher = IntakeBatcher(client.register_script(INTAKE_SCRIPT), max_batch)
        try:
            if before is not None:
                await before(queue, batcher)
            calls = script_calls(redis)
            outcomes: list[Any] = await asyncio.gather(
                *(
                    queue.submit_delivery_async(
                        batcher, [one], "github", delivery, DeliveryRecord(forge="github")
                    )
                    for one, delivery in deliveries
                ),
                return_exceptions=True,
            )
            return outcomes, script_calls(redis) - calls
        finally:
            await client.aclose()

    # A delivery left waiting for ever would hang the test: fail it instead.
    return asyncio.run(asyncio.wait_for(run(), 30))


async def load_the_script(queue: BuildQueue, batcher: IntakeBatcher) -> None:
    """One delivery first, so that Redis has the script and later counts are calls only."""
    await queue.submit_delivery_async(
        batcher, [plan("warm/up", "main")], "github", "warm-up", DeliveryRecord(forge="github")
    )


def test_deliveries_that_arrive_together_take_one_script_call_and_each_its_builds(
    redis: Redis,
) -> None:
    deliveries = [(plan(f"team/app-{i}", "main"), f"d-{i}") for i in range(10)]
    outcomes, calls = deliver_together(redis, deliveries, before=load_the_script)
    assert calls == 1
    store = BuildStore(redis)
    for (sent, _), outcome in zip(deliveries, outcomes, strict=True):
        assert isinstance(outcome, Submitted) and not outcome.duplicate
        (build_id,) = outcome.builds
        record = store.get(build_id)
        assert record is not None and record.repository == sent.repository
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 11  # the warm-up's job too


def test_a_batch_past_its_size_goes_in_several_calls(redis: Redis) -> None:
    deliveries = [(plan(f"team/app-{i}", "main"), f"d-{i}") for i in range(7)]
    outcomes, calls = deliver_together(redis, deliveries, max_batch=3, before=load_the_script)
    assert calls == 3
    assert all(isinstance(outcome, Submitted) for outcome in outcomes)
    assert len({build for o in outcomes if isinstance(o, Submitted) for build in o.builds}) == 7


def test_a_redelivery_in_the_same_batch_is_a_duplicate_of_the_first(redis: Redis) -> None:
    deliveries = [(plan("team/app", "main"), "same-id"), (plan("team/app", "main"), "same-id")]
    first, second = deliver_together(redis, deliveries)[0]
    assert isinstance(first, Submitted) and isinstance(second, Submitted)
    assert not first.duplicate and second.duplicate
    assert second.builds == first.builds
    assert redis.zcard("hookbuild:builds") == 1


def test_a_delivery_redis_cannot_write_fails_alone_and_can_be_redelivered(redis: Redis) -> None:
    # The broken repository's slot set is a string: Redis refuses its SCARD (WRONGTYPE).
    redis.set("hookbuild:slots:team/broken", "not a set")
    deliveries = [
        (plan("team/app", "main"), "d-good"),
        (plan("team/broken", "main"), "d-broken"),
        (plan("team/other", "main"), "d-other"),
    ]
    (good, broken, other), calls = deliver_together(redis, deliveries, before=load_the_script)
    assert calls == 1
    assert isinstance(broken, ResponseError) and "WRONGTYPE" in str(broken)
    assert isinstance(good, Submitted) and isinstance(other, Submitted)
    store = BuildStore(redis)
    assert all(store.get(build) for build in [*good.builds, *other.builds])
    assert redis.get("hookbuild:delivery:github:d-broken") is None  # not taken as done

    redis.delete("hookbuild:slots:team/broken")
    (again,), _ = deliver_together(redis, [(plan("team/broken", "main"), "d-broken")])
    assert isinstance(again, Submitted) and not again.duplicate
    (build_id,) = again.builds
    record = store.get(build_id)
    assert record is not None and record.repository == "team/broken"


def test_when_redis_is_away_every_delivery_of_the_batch_gets_the_error(redis: Redis) -> None:
    def away() -> AsyncRedis:  # nothing listens there; no retries, to keep the test short
        return AsyncRedis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))

    deliveries = [(plan(f"team/app-{i}", "main"), f"d-{i}") for i in range(3)]
    outcomes, _ = deliver_together(redis, deliveries, script_on=away)
    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes), outcomes
    assert redis.zcard("hookbuild:builds") == 0


@pytest.mark.parametrize("where", ["waiting", "in flight"])
def test_a_cancelled_batch_cancels_the_deliveries_it_holds(redis: Redis, where: str) -> None:
    """A serving process that stops mid-call answers nothing rather than leave requests
    waiting for ever."""

    async def run() -> list[bool]:
        client = async_twin(redis)
        batcher = IntakeBatcher(client.register_script(INTAKE_SCRIPT))
        packed, _ = BuildQueue(redis).prepare([plan("team/app", "main")], None, None)
        try:
            first = asyncio.ensure_future(batcher.run(packed))
            if where == "in flight":
                await asyncio.sleep(0)  # the sender's first step: its call is out
            second = asyncio.ensure_future(batcher.run(packed))
            await asyncio.sleep(0)
            assert batcher._sender is not None
            batcher._sender.cancel()
            await asyncio.gather(first, second, return_exceptions=True)
            return [first.cancelled(), second.cancelled()]
        finally:
            await client.aclose()

    assert asyncio.run(asyncio.wait_for(run(), 30)) == [True, True]


def test_redis_out_of_memory_refuses_the_whole_call_and_writes_nothing(redis: Redis) -> None:
    redis.script_load(INTAKE_SCRIPT)  # so that the only call counted is the refused one
    used = int(redis.info("memory")["used_memory"])
    redis.config_set("maxmemory", str(used // 2))  # no eviction by default: writes refused
    try:
        deliveries = [(plan(f"team/app-{i}", "main"), f"d-{i}") for i in range(3)]
        outcomes, calls = deliver_together(redis, deliveries)
    finally:
        redis.config_set("maxmemory", "0")
    assert calls == 1
    assert all(isinstance(o, ResponseError) and "OOM" in str(o) for o in outcomes), outcomes
    assert redis.dbsize() == 0
