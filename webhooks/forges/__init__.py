"""Forge drivers: one module per forge, all with the face of `ForgeDriver`.

`DRIVERS` is the registry: a new forge is its module and its line there. Everything that
lists forges derives from it: the hook routes, `FORGES` (OpenAPI), and the config's check of
`forge:` (the entry points pass `DRIVERS` to `load_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from webhooks.forges.base import ForgeDriver, Parsed
from webhooks.forges.bitbucket import BitbucketCloudDriver
from webhooks.forges.bitbucket_server import BitbucketServerDriver
from webhooks.forges.gitea import GiteaFamilyDriver
from webhooks.forges.github import GitHubDriver
from webhooks.forges.gitlab import GitLabDriver

_REGISTERED: tuple[ForgeDriver, ...] = (
    GitHubDriver(),
    GitLabDriver(),
    BitbucketCloudDriver(),
    BitbucketServerDriver(),
    GiteaFamilyDriver("gitea", "Gitea"),
    GiteaFamilyDriver("forgejo", "Forgejo"),
    GiteaFamilyDriver("gogs", "Gogs"),
)
# Every forge hookbuild knows, by its name. Drivers hold no state that changes.
DRIVERS: Mapping[str, ForgeDriver] = MappingProxyType({d.name: d for d in _REGISTERED})
FORGES: tuple[str, ...] = tuple(DRIVERS)


def default_drivers() -> dict[str, ForgeDriver]:
    return dict(DRIVERS)


__all__ = ["DRIVERS", "FORGES", "ForgeDriver", "Parsed", "default_drivers"]
