"""Find builds whose worker is gone (killed, crashed, machine lost) and end or retry them.

A running build's job refreshes a heartbeat key every few seconds; when that key has
expired, nobody is running the build any more. Every worker process reaps, so a build is
reaped within seconds of its heartbeat's expiry while any worker is alive.
"""

from __future__ import annotations

import threading
import time

from redis import Redis
from redis.exceptions import RedisError

from builder.config import Config
from runners.queue import BuildQueue
from runners.records import ALIVE_TTL_SECONDS, BuildStatus
from runners.servicelog import get_logger

log = get_logger(__name__)

REAP_EVERY_SECONDS = 5.0


def reap(connection: Redis, config: Config) -> list[str]:
    """End (or start again, per `retries.lost_builds`) every running build without a heartbeat."""
    queue = BuildQueue.for_config(connection, config)
    store = queue.store
    reaped = []
    for build_id in store.running():
        if store.is_alive(build_id):
            continue
        record = store.get(build_id)
        if record is None or record.started_at is None:
            continue
        if time.time() - record.started_at < ALIVE_TTL_SECONDS:
            continue  # its first heartbeat may still be on its way
        lost = f"the worker running it stopped ({record.worker}: killed, crashed or lost)"
        if record.attempt <= config.retries.lost_builds and record.plan is not None:
            if store.transition(
                build_id, {BuildStatus.RUNNING}, BuildStatus.QUEUED, attempt=record.attempt + 1
            ):
                store.append_log(
                    build_id, [f"==> {lost}; starting it again (attempt {record.attempt + 1})"]
                )
                queue.requeue(record)
                log.warning("build lost; queued again", build_id=build_id, worker=record.worker)
                reaped.append(build_id)
            continue
        if store.finish(build_id, BuildStatus.FAILED, error=lost):
            store.append_log(build_id, [f"==> FAILED: {lost}"])
            log.warning("build lost; failed", build_id=build_id, worker=record.worker)
            queue.release(build_id, record.repository)
            reaped.append(build_id)
    return reaped


class Reaper(threading.Thread):
    def __init__(self, connection: Redis, config: Config) -> None:
        super().__init__(name="hookbuild-reaper", daemon=True)
        self.connection = connection
        self.config = config
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(REAP_EVERY_SECONDS):
            try:
                reap(self.connection, self.config)
            except RedisError as exc:
                log.warning("reaper cannot reach Redis; trying again", error=str(exc))
                continue

    def stop(self) -> None:
        self._done.set()
