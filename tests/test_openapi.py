"""The OpenAPI document describes what the app really serves."""

from __future__ import annotations

import re
import time
from pathlib import Path

from redis import Redis
from starlette.routing import Route
from starlette.testclient import TestClient

from runners.records import BuildRecord, BuildStatus, BuildStore
from tests.configs import parse_config
from webhooks.app import create_app

CONFIG = "repositories:\n  - {name: acme/web, forge: github, secret: s, image: r/web, rules: [{branch: main}]}\n"
DASHBOARD = {"/", "/builds", "/builds/{build_id}", "/deliveries"}


def app_and_client(redis: Redis, tmp_path: Path) -> tuple[object, TestClient]:
    app = create_app(parse_config(f"state_dir: {tmp_path}\n{CONFIG}", {}), redis, docker_environ={})
    return app, TestClient(app)


def documented_form(path: str) -> str:
    """Starlette's `{rest:path}` routes, as the document spells them."""
    return {
        "/trigger/{rest:path}": "/trigger/{repository}/{token}",
        "/badge/{rest:path}": "/badge/{repository}/{ref}.svg",
    }.get(path, path)


def test_every_api_route_is_documented_with_its_methods_and_nothing_else(
    redis: Redis, tmp_path: Path
) -> None:
    app, client = app_and_client(redis, tmp_path)
    document = client.get("/api/openapi.json").json()
    served = {
        documented_form(route.path): {m.lower() for m in (route.methods or ()) if m != "HEAD"}
        for route in app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path not in DASHBOARD
    }
    documented = {path: set(methods) for path, methods in document["paths"].items()}
    assert document["openapi"].startswith("3.")
    assert served == documented


def test_a_real_build_has_every_property_the_schema_requires(redis: Redis, tmp_path: Path) -> None:
    _, client = app_and_client(redis, tmp_path)
    store = BuildStore(redis)
    store.add(
        BuildRecord(
            id="b1",
            forge="github",
            repository="acme/web",
            ref="refs/heads/main",
            sha="a" * 40,
            image="r/web",
            tags=("latest",),
            created_at=time.time(),
        )
    )
    store.start("b1", "w")
    store.finish(
        "b1",
        BuildStatus.SUCCEEDED,
        digest="sha256:" + "0" * 64,
        digests={"r/web:latest": "sha256:" + "0" * 64},
    )
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["Build"]

    build = client.get("/api/builds/b1").json()
    listed = client.get("/api/builds").json()["builds"][0]

    for answer in (build, listed):
        assert set(schema["required"]) <= set(answer)
        assert set(answer) <= set(schema["properties"]), "no property the document does not name"
        assert answer["status"] in schema["properties"]["status"]["enum"]
    paths = client.get("/api/openapi.json").json()["paths"]
    assert all(re.fullmatch(r"/[\w/{}.-]*", p) for p in paths)
