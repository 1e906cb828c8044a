"""Which network a build's RUN steps get, and the build log's line when it is none.

`network: default` is what `docker build` gives: the engine's `bridge` network. An engine
started with `--bridge=none` has no such network (scripts/up falls back to one where the
machine has no working bridge), and then RUN steps reach nothing whatever the config says:
the classic builder falls back to no network by itself, and BuildKit must be asked for
`none` or it fails (builder/build/docker/engine.py). `network: none` asks both builders
for no network on any engine: docker-py's `network_mode="none"`, BuildKit's `networkmode=none`, as
`docker build --network none` does.
"""

from __future__ import annotations


def no_network_reason(requested: str, engine_has_bridge: bool) -> str | None:
    """Why a build's RUN steps have no network, for the build log; None when they have
    the engine's default network."""
    if requested == "none":
        return "the config says `network: none`"
    if not engine_has_bridge:
        return "the Docker engine has no bridge network (dockerd --bridge=none)"
    return None
