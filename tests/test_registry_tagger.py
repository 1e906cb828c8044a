"""builder.build.registry: which images it can tag in their registry, and how it fails."""

from __future__ import annotations

import pytest

from builder.build.registry import ImageName, RegistryTagger, _is_loopback
from builder.errors import RetagFailed
from tests.registry import RegistryReader


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/acme/web", ImageName("127.0.0.1:5000", "acme/web")),
        ("registry.example.com/web", ImageName("registry.example.com", "web")),
        ("localhost/web", ImageName("localhost", "web")),
        ("[::1]:5000/web", ImageName("[::1]:5000", "web")),
        ("acme/web", None),  # Docker Hub's short name: the engine pushes it
        ("web", None),
    ],
)
def test_image_names(image: str, expected: ImageName | None) -> None:
    assert ImageName.parse(image) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.9.9.9", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
    ],
)
def test_loopback_hosts_speak_http_unless_configured(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback
    tagger = RegistryTagger(f"{host}/web", None, None)
    assert tagger.base.startswith("http://" if loopback else "https://")
    assert RegistryTagger(f"{host}/web", None, False).base.startswith("https://")


def test_an_unknown_digest_is_a_retag_failure_not_a_crash(registry: RegistryReader) -> None:
    tagger = RegistryTagger(f"{registry.host}/nothing/here", None, True)
    with pytest.raises(RetagFailed, match=r"GET manifests/sha256:0+: HTTP 404"):
        tagger.tag("sha256:" + "0" * 64, "latest")
    assert registry.tags("nothing/here") == []
