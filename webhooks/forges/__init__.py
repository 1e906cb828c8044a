"""Forge drivers: one module per forge, all with the face of `ForgeDriver`."""

from __future__ import annotations

from webhooks.forges.base import ForgeDriver, Parsed
from webhooks.forges.bitbucket import BitbucketCloudDriver
from webhooks.forges.bitbucket_server import BitbucketServerDriver
from webhooks.forges.gitea import GiteaFamilyDriver
from webhooks.forges.github import GitHubDriver
from webhooks.forges.gitlab import GitLabDriver


def default_drivers() -> dict[str, ForgeDriver]:
    drivers: list[ForgeDriver] = [
        GitHubDriver(),
        GitLabDriver(),
        BitbucketCloudDriver(),
        BitbucketServerDriver(),
        GiteaFamilyDriver("gitea", "Gitea"),
        GiteaFamilyDriver("forgejo", "Forgejo"),
        GiteaFamilyDriver("gogs", "Gogs"),
    ]
    return {driver.name: driver for driver in drivers}


__all__ = ["ForgeDriver", "Parsed", "default_drivers"]
