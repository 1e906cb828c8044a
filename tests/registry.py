"""Read what really is in a Distribution v2 registry: tags, digests and file contents."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import httpx2 as httpx

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


@dataclass
class RegistryReader:
    port: int
    auth: tuple[str, str] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _get(self, path: str, accept: str | None = None) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        return httpx.get(
            f"http://{self.host}/v2/{path}", headers=headers, auth=self.auth, timeout=10
        )

    def tags(self, repository: str) -> list[str]:
        response = self._get(f"{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def digest(self, repository: str, tag: str) -> str:
        response = self._get(f"{repository}/manifests/{tag}", MANIFEST_TYPES)
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def config(self, repository: str, tag: str) -> dict:  # type: ignore[type-arg]
        manifest = self._get(f"{repository}/manifests/{tag}", MANIFEST_TYPES).json()
        return self._get(f"{repository}/blobs/{manifest['config']['digest']}").json()  # type: ignore[no-any-return]

    def files(self, repository: str, tag: str) -> set[str]:
        """Every path in every layer of the image."""
        manifest = self._get(f"{repository}/manifests/{tag}", MANIFEST_TYPES).json()
        found: set[str] = set()
        for layer in manifest["layers"]:
            blob = self._get(f"{repository}/blobs/{layer['digest']}").content
            data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                found.update(m.name.lstrip("./") for m in archive.getmembers())
        return found

    def read_file(self, repository: str, tag: str, path: str) -> str | None:
        """The file's text in the image's top-most layer that has it."""
        manifest = self._get(f"{repository}/manifests/{tag}", MANIFEST_TYPES).json()
        wanted = path.lstrip("/")
        for layer in reversed(manifest["layers"]):
            blob = self._get(f"{repository}/blobs/{layer['digest']}").content
            data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                for member in archive.getmembers():
                    if member.name.lstrip("./") == wanted and member.isfile():
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        return extracted.read().decode()
        return None
