"""Delivery ids already acted on, so a redelivered webhook builds nothing twice.

The key lives for a week: far longer than any RQ job or forge retry window.
"""

from __future__ import annotations

import json

from redis import Redis
from redis.client import Pipeline

from runners.keys import PREFIX
from runners.records import text

DELIVERY_TTL_SECONDS = 7 * 24 * 3600
_PENDING = "pending"


class DeliveryLedger:
    def __init__(self, connection: Redis, prefix: str = PREFIX) -> None:
        self.connection = connection
        self.prefix = prefix

    def _key(self, forge: str, delivery_id: str) -> str:
        return f"{self.prefix}:delivery:{forge}:{delivery_id}"

    def claim(self, forge: str, delivery_id: str) -> list[str] | None:
        """None if this delivery is new (and now claimed); else the builds it already made."""
        key = self._key(forge, delivery_id)
        if self.connection.set(key, _PENDING, nx=True, ex=DELIVERY_TTL_SECONDS):
            return None
        value = self.connection.get(key)
        if value is None or text(value) == _PENDING:
            return []
        return list(json.loads(value))

    def record(
        self, forge: str, delivery_id: str, build_ids: list[str], pipeline: Pipeline
    ) -> None:
        pipeline.set(self._key(forge, delivery_id), json.dumps(build_ids), ex=DELIVERY_TTL_SECONDS)

    def claim_ref(self, forge: str, repository: str, ref: str, sha: str) -> str | None:
        """Claim building `ref` at `sha` for a day; None if claimed now, else who has it.

        For forges that announce one tag twice (Gitea's push and create events).
        """
        key = f"{self.prefix}:refclaim:{forge}:{repository}:{ref}:{sha}"
        if self.connection.set(key, "claimed", nx=True, ex=24 * 3600):
            return None
        return "an earlier delivery for the same tag and commit"

    def release_ref(self, forge: str, repository: str, ref: str, sha: str) -> None:
        self.connection.delete(f"{self.prefix}:refclaim:{forge}:{repository}:{ref}:{sha}")

    def release(self, forge: str, delivery_id: str) -> None:
        """Forget a claim whose builds could not be queued, so a redelivery can try again."""
        self.connection.delete(self._key(forge, delivery_id))
