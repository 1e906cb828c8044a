"""BuildKit's build request: docker-py's only private calls are here.

docker-py's `APIClient.build()` has no `version` parameter, and BuildKit is asked for
with `version=2`. This makes the request `build()` makes, through the same client (its
base URL, API version, TLS and configured headers, which `_post` adds), with that one
parameter more; nothing else in hookbuild knows docker-py's private methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import docker


def post_build(
    client: docker.APIClient, params: Mapping[str, str], body: BinaryIO
) -> Iterator[dict[str, Any]]:
    """POST /build with `params`, BuildKit asked for, and the context tar `body`; the
    engine's decoded stream, to be read while `body` is open."""
    response = client._post(
        client._url("/build"),
        params={**params, "version": "2"},  # BuildKit
        data=body,
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=None,
    )
    client._raise_for_status(response)
    chunks: Iterator[dict[str, Any]] = client._stream_helper(response, decode=True)
    return chunks
