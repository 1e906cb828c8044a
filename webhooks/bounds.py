"""Bounds on what an anonymous request can make us store, log or echo.

A repository name, an event name or a delivery id comes from the request before anything
is verified; each is cut to the delivery log's bound for it (runners/deliverylog.py), so
that an unsigned request costs the same few hundred bytes in Redis, the service log and its
answer whatever it sends.
"""

from __future__ import annotations

from runners.deliverylog import FIELD_CHARS, clip

NAME_CHARS = FIELD_CHARS["repository"]
EVENT_CHARS = FIELD_CHARS["event"]
DELIVERY_ID_CHARS = FIELD_CHARS["delivery_id"]
REASON_CHARS = FIELD_CHARS["reason"]
FORGE_CHARS = FIELD_CHARS["forge"]

__all__ = [
    "DELIVERY_ID_CHARS",
    "EVENT_CHARS",
    "FORGE_CHARS",
    "NAME_CHARS",
    "REASON_CHARS",
    "clip",
    "clip_optional",
]


def clip_optional(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else clip(value, limit)
