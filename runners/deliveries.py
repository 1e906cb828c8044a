"""Delivery ids already acted on, so a redelivered webhook builds nothing twice.

The key lives for a week: far longer than any RQ job or forge retry window.
"""

from __future__ import annotations

from redis import Redis

from runners.keys import PREFIX

DELIVERY_TTL_SECONDS = 7 * 24 * 3600


class DeliveryLedger:
    def __init__(self, connection: Redis, prefix: str = PREFIX) -> None:
        self.connection = connection
        self.prefix = prefix

    def key(self, forge: str, delivery_id: str) -> str:
        """Holds the delivery's build ids (JSON); set by the intake script if absent."""
        return f"{self.prefix}:delivery:{forge}:{delivery_id}"

    def claim_ref(self, forge: str, repository: str, ref: str, sha: str) -> str | None:
        """Claim building `ref` at `sha` for a day; None if claimed now, else who has it.

        For forges that announce one tag twice (Gitea's push and create events).
        """
        key = self._ref_key(forge, repository, ref, sha)
        if self.connection.set(key, "claimed", nx=True, ex=24 * 3600):
            return None
        return "an earlier delivery for the same tag and commit"

    def release_ref(self, forge: str, repository: str, ref: str, sha: str) -> None:
        self.connection.delete(self._ref_key(forge, repository, ref, sha))

    def _ref_key(self, forge: str, repository: str, ref: str, sha: str) -> str:
        return f"{self.prefix}:refclaim:{forge}:{repository}:{ref}:{sha}"
