"""Give a pushed image one more tag inside its registry: the manifest the first push put
there, put again under the new tag (as `crane tag` does).

Two requests: a GET of the manifest by digest and a PUT under the tag (~12 ms here). The
engine's push of the same tag checks every layer with the registry again and costs 35 to
70 ms (bench/e2e.py). Only Basic auth (or none) is spoken here: a registry that answers
with a Bearer challenge (Docker Hub, GHCR), or any other trouble, raises `RetagFailed`,
and the caller pushes that tag through the engine as before.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

import requests

from builder.build.engine import RegistryAuth
from builder.errors import RetagFailed

# What a single-platform build pushes, and the lists and indexes a registry may hold.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def _is_loopback(host: str) -> bool:
    """`host` as in an image reference: name or address, maybe a port, IPv6 in brackets."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ImageName:
    host: str  # the registry, as in the image reference
    path: str  # the repository inside it

    @classmethod
    def parse(cls, image: str) -> ImageName | None:
        """None for an image without a registry host (Docker Hub's short names)."""
        host, sep, path = image.partition("/")
        if not sep or not ("." in host or ":" in host or host == "localhost"):
            return None
        return cls(host, path)


class RegistryTagger:
    def __init__(
        self,
        image: str,
        auth: RegistryAuth | None,
        insecure: bool | None,
        timeout: float = 10,
        connect_timeout: float = 3,
    ) -> None:
        """`insecure`: plain http (the registry's config says so); None when the registry
        is not configured, where loopback hosts get http, as the engine treats them."""
        name = ImageName.parse(image)
        if name is None:
            raise RetagFailed(f"{image} names no registry host")
        plain = _is_loopback(name.host) if insecure is None else insecure
        self.base = f"{'http' if plain else 'https'}://{name.host}/v2/{name.path}"
        self.auth = (auth.username, auth.password) if auth else None
        # A registry the worker cannot reach (the engine may be on another host that can)
        # costs at most the connect timeout before the engine pushes the tag instead.
        self.timeout = (connect_timeout, timeout)

    def tag(self, digest: str, tag: str) -> str:
        """Put manifest `digest` under `tag`; return the digest the registry reports."""
        with requests.Session() as session:
            manifest = self._send(
                session, "GET", f"manifests/{digest}", {"Accept": ", ".join(MANIFEST_TYPES)}
            )
            media_type = manifest.headers.get("Content-Type", MANIFEST_TYPES[0]).split(";")[0]
            if hashlib.sha256(manifest.content).hexdigest() != digest.removeprefix("sha256:"):
                raise RetagFailed(f"the registry's manifest {digest[:19]} is not that digest")
            put = self._send(
                session,
                "PUT",
                f"manifests/{tag}",
                {"Content-Type": media_type},
                data=manifest.content,
            )
        return put.headers.get("Docker-Content-Digest") or digest

    def _send(
        self,
        session: requests.Session,
        method: str,
        path: str,
        headers: dict[str, str],
        data: bytes | None = None,
    ) -> requests.Response:
        try:
            response = session.request(
                method,
                f"{self.base}/{path}",
                headers=headers,
                data=data,
                auth=self.auth,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RetagFailed(f"{method} {path}: {exc}") from exc
        if response.status_code == 401:
            challenge = response.headers.get("WWW-Authenticate", "").split(" ", 1)[0]
            raise RetagFailed(f"{method} {path}: the registry asks for {challenge or 'auth'}")
        if not response.ok:
            raise RetagFailed(f"{method} {path}: HTTP {response.status_code}")
        return response
