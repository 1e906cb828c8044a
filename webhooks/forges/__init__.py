"""Forge drivers: one module per forge, all with the face of `ForgeDriver`."""

from __future__ import annotations

from webhooks.forges.base import ForgeDriver, Parsed
from webhooks.forges.github import GitHubDriver


def default_drivers() -> dict[str, ForgeDriver]:
    drivers: list[ForgeDriver] = [GitHubDriver()]
    return {driver.name: driver for driver in drivers}


__all__ = ["ForgeDriver", "Parsed", "default_drivers"]
