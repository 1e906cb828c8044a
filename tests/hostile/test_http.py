"""The HTTP surface against anonymous and hostile clients: findings 4, 6, 7, 11, 14, 18, 20.

Every test runs the real app on real Redis; the connection tests serve it with uvicorn on
loopback and speak raw HTTP over real sockets.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config
from runners import servicelog
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests.conftest import github_signature
from tests.helpers import parse_config
from tests.services import docker_env, free_port, port_open, wait_until
from webhooks.app import create_app
from webhooks.connections import guarded_config

SECRET = "github-secret"
TOKEN = "t" * 32
MB = 1024 * 1024


def make_config(tmp_path: Path, server: str = "", body: int = 100_000) -> Config:
    return parse_config(
        f"""
state_dir: {tmp_path}
server: {{max_body_bytes: {body}, token: {TOKEN}{server}}}
repositories:
  - name: acme/web
    forge: github
    secret: {SECRET}
    trigger_token: trigger-token-123
    image: localhost:5000/web
    rules: [{{branch: main, tags: [latest]}}]
  - name: acme/quiet
    forge: github
    secret: {SECRET}
    image: localhost:5000/quiet
    rules: [{{branch: main, tags: [latest]}}]
""",
        {},
    )


@pytest.fixture
def public(redis: Redis, tmp_path: Path) -> TestClient:
    return TestClient(create_app(make_config(tmp_path), redis))


@pytest.fixture
def private(redis: Redis, tmp_path: Path) -> TestClient:
    return TestClient(create_app(make_config(tmp_path, ", public: false"), redis))


def unsigned_push(client: TestClient, name: str, **headers: str) -> httpx.Response:
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": name}})
    return client.post(
        "/hooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", **headers},
    )


# -- 4: unauthenticated growth ------------------------------------------------------------


def test_unsigned_deliveries_with_huge_fields_store_log_and_echo_little(
    redis: Redis, tmp_path: Path
) -> None:
    """#4: 1 MB names, events and delivery ids in unsigned deliveries are bounded before
    they are stored in Redis, logged, echoed in the answer or listed by /api/events."""
    public = TestClient(create_app(make_config(tmp_path, body=4 * MB), redis))
    log = io.StringIO()
    servicelog.configure("json", "info", stream=log)
    try:
        answers = [
            unsigned_push(
                public,
                "x" * MB,
                **{"X-GitHub-Delivery": "d" * MB, "X-GitHub-Event": "push" + "e" * MB},
            )
            for _ in range(5)
        ]
    finally:
        servicelog.configure("text")

    assert all(a.status_code in (400, 404) for a in answers), answers[0].text
    assert all(len(a.content) < 4096 for a in answers)
    stored = int(redis.memory_usage("hookbuild:deliveries") or 0)
    assert 0 < stored < 100_000
    assert len(log.getvalue()) < 5 * 8192
    events = public.get("/api/events?limit=200")
    assert events.status_code == 200 and len(events.content) < 100_000
    assert len(events.json()["events"]) == 5


def test_oversized_lines_written_before_the_bounds_are_cut_when_listed(
    public: TestClient, redis: Redis
) -> None:
    """#4: a delivery line stored whole by an older version is listed bounded."""
    record = {"forge": "github", "outcome": "rejected", "status": 404, "builds": []}
    record |= {"repository": "x" * MB, "reason": "y" * MB, "at": time.time()}
    redis.xadd("hookbuild:deliveries", {"record": json.dumps(record)})

    events = public.get("/api/events")

    assert events.status_code == 200 and len(events.content) < 10_000
    assert events.json()["events"][0]["repository"].startswith("xxx")


# -- 6, 7: every body bounded, every read behind the token ------------------------------


def test_preview_refuses_a_body_over_the_limit_without_reading_it(public: TestClient) -> None:
    """#6: POST /api/preview reads its body with server.max_body_bytes (413)."""

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while reading
        yield b'{"repository": "acme/web", "ref": "main", "message": "'
        for _ in range(50):
            yield b"m" * 10_000
        yield b'"}'

    declared = public.post("/api/preview", content=b"{}", headers={"Content-Length": "9" * 12})
    streamed = public.post("/api/preview", content=chunks())

    assert declared.status_code == 413 and "limit" in declared.json()["error"]
    assert streamed.status_code == 413 and "limit" in streamed.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/badge/acme/web/main.svg"),
        ("GET", "/metrics"),
        ("POST", "/api/preview"),
        ("GET", "/api/openapi.json"),
    ],
)
def test_private_reads_need_the_token_everywhere(
    private: TestClient, method: str, path: str
) -> None:
    """#6, #7: with public: false, badges, metrics, preview and the API document need the
    token; with it, they answer."""
    body = {"repository": "acme/web", "ref": "main"} if method == "POST" else None

    anonymous = private.request(method, path, json=body)
    with_token = private.request(
        method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert anonymous.status_code == 401, anonymous.text
    assert "acme" not in anonymous.text
    assert with_token.status_code == 200, with_token.text


def test_healthz_stays_open_but_tells_why_only_with_the_token(redis: Redis, tmp_path: Path) -> None:
    """#7: /healthz answers a load balancer without the token, naming no host or socket."""
    app = create_app(
        make_config(tmp_path, ", public: false"),
        redis,
        docker_environ={"DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}"},
    )
    client = TestClient(app)

    anonymous = client.get("/healthz")
    with_token = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})

    assert anonymous.status_code == 503 and anonymous.json()["docker"]["ok"] is False
    assert anonymous.json()["redis"]["ok"] is True
    assert "not reachable" not in anonymous.text and "127.0.0.1" not in anonymous.text
    assert with_token.status_code == 503 and "not reachable" in with_token.text


# -- 14: numbers parse strictly -----------------------------------------------------------


@pytest.fixture
def a_build(redis: Redis) -> str:
    """A finished build: a follow of its log ends at once."""
    store = BuildStore(redis)
    store.add(
        BuildRecord(
            id="b1",
            forge="github",
            repository="acme/web",
            ref="refs/heads/main",
            sha="a" * 40,
            image="localhost:5000/web",
            tags=("latest",),
            created_at=time.time(),
        )
    )
    store.start("b1", "worker-1")
    store.finish("b1", BuildStatus.SUCCEEDED)
    return "b1"


@pytest.mark.parametrize(
    "path",
    [
        "/api/builds?limit=%C2%B2",
        "/api/builds?offset=" + "9" * 5000,
        "/api/builds?limit=-3",
        "/api/builds?limit=500",
        "/api/builds?offset=1_000",
        "/api/events?limit=%D9%A3",
        "/api/builds/b1/log?start=%C2%B2",
        "/api/builds/b1/log?start=--5",
        "/builds?offset=%C2%B2",
    ],
)
def test_malformed_or_out_of_range_numbers_are_400_in_our_json_shape(
    public: TestClient, a_build: str, path: str
) -> None:
    """#14: superscripts, Arabic digits, 5000 digits, signs, underscores and out-of-range
    numbers in query strings are a JSON 400, never a 500 with a traceback."""
    answer = public.get(path)

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"error"} and len(answer.text) < 200


@pytest.mark.parametrize("last", ["9" * 5000, "²", "-1", "1e3"])
def test_a_malformed_last_event_id_is_400(public: TestClient, a_build: str, last: str) -> None:
    """#14: Last-Event-ID is parsed strictly too."""
    answer = public.get(
        "/api/builds/b1/log?follow=true", headers=[(b"Last-Event-ID", last.encode())]
    )

    assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["error"]


def test_well_formed_numbers_still_page(public: TestClient, a_build: str) -> None:
    """#14: the strict parser keeps what worked: absent or empty is the default."""
    assert public.get("/api/builds?limit=1&offset=0").json()["builds"][0]["id"] == "b1"
    assert public.get("/api/builds?limit=&offset=").json()["limit"] == 50
    assert public.get("/api/builds/b1/log?start=0").status_code == 200


# -- 18: private reads do not enumerate repositories --------------------------------------


def test_private_hooks_answer_an_unknown_repository_as_a_bad_signature(
    private: TestClient, public: TestClient
) -> None:
    """#18: with public: false, /hooks/* gives an unknown repository the same status and
    body as a known one with a bad signature; public servers keep the helpful 404."""
    bad_signature = {"X-Hub-Signature-256": github_signature("wrong", b"{}")}

    unknown = unsigned_push(private, "nobody/nothing", **bad_signature)
    known = unsigned_push(private, "acme/web", **bad_signature)
    unsigned = unsigned_push(private, "acme/web")
    helpful = unsigned_push(public, "nobody/nothing")

    assert unknown.status_code == known.status_code == unsigned.status_code == 401
    assert unknown.content == known.content == unsigned.content
    assert helpful.status_code == 404 and "nobody/nothing" in helpful.json()["error"]


def test_private_triggers_answer_alike_for_unknown_disabled_and_wrong(
    private: TestClient, public: TestClient
) -> None:
    """#18: with public: false, /trigger/* answers an unknown repository, one without
    triggers and a wrong token the same; public servers keep their 404/403/401."""
    paths = ["/trigger/nobody/nothing/x", "/trigger/acme/quiet/x", "/trigger/acme/web/wrong"]

    answers = [private.post(path) for path in paths]
    helpful = [public.post(path).status_code for path in paths]

    assert {a.status_code for a in answers} == {401}
    assert len({a.content for a in answers}) == 1
    assert helpful == [404, 403, 401]


# -- 20: security headers -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/builds", "/deliveries", "/api/builds", "/nowhere"])
def test_every_answer_forbids_framing_and_sniffing(public: TestClient, path: str) -> None:
    """#20: X-Frame-Options DENY, a CSP with frame-ancestors 'none', and nosniff."""
    headers = public.get(path).headers

    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy


# -- 11: slow and half-open connections ---------------------------------------------------


class Served:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def served(redis: Redis, tmp_path: Path, docker_host: str) -> Iterator[Served]:
    """The app behind the protocol `serve` uses, with short deadlines and 60 connections."""
    config = make_config(
        tmp_path,
        ", header_timeout_seconds: 1.5, body_timeout_seconds: 1, max_connections: 60,"
        " max_header_bytes: 4096",
    )
    port = free_port()
    settings = guarded_config(
        create_app(config, redis, docker_environ=docker_env(docker_host)),
        config.server,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, name="guarded-server", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, "the guarded server")
    try:
        yield Served(port)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def read_all(connection: socket.socket, wait: float) -> bytes:
    """Everything the server sends until it closes the connection (or `wait` passes)."""
    connection.settimeout(wait)
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except TimeoutError:
        return received + b"<still open>"
    return received


@pytest.mark.docker
def test_half_sent_headers_are_cut_off_while_webhooks_and_healthz_still_answer(
    served: Served,
) -> None:
    """#11: 40 connections that never finish their headers do not stop a webhook or
    /healthz from being answered meanwhile, and are closed after the header timeout."""
    slow = [served.connect() for _ in range(40)]
    for index, connection in enumerate(slow):
        connection.sendall(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"%d" % index)
    started = time.monotonic()

    webhook = httpx.post(
        f"{served.url}/hooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "ping"},
        timeout=5,
    )
    health = httpx.get(f"{served.url}/healthz", timeout=5)
    answered_after = time.monotonic() - started
    deadline = started + 5  # one wait for all: a server that never closes them fails in 5 s
    closed = [read_all(c, max(0.1, deadline - time.monotonic())) for c in slow]
    for connection in slow:
        connection.close()

    assert webhook.status_code == 200 and answered_after < 1.5
    assert health.status_code == 200 and health.json()["docker"]["ok"]
    assert all(c.startswith(b"HTTP/1.1 408") for c in closed), closed[0]
    assert time.monotonic() - started < 5


@pytest.mark.docker
def test_connections_past_the_limit_are_refused_not_queued(served: Served) -> None:
    """#11: past server.max_connections a new connection gets a 503 and is closed, so the
    process never runs out of descriptors; room comes back as the slow ones time out."""
    held = [served.connect() for _ in range(60)]
    time.sleep(0.3)
    extra = served.connect()
    refused = read_all(extra, 2)
    extra.close()
    for connection in held:
        connection.close()

    assert refused.startswith(b"HTTP/1.1 503"), refused
    wait_until(lambda: httpx.get(f"{served.url}/healthz").status_code == 200, 5, "room")


@pytest.mark.docker
def test_oversized_headers_are_refused(served: Served) -> None:
    """#11: headers past server.max_header_bytes get a 431, however fast they come."""
    connection = served.connect()
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10_000)

    answer = read_all(connection, 3)
    connection.close()

    assert answer.startswith(b"HTTP/1.1 431"), answer


@pytest.mark.docker
def test_a_trickled_body_times_out_with_a_408(served: Served) -> None:
    """#11: a body that does not arrive within server.body_timeout_seconds is a 408."""
    connection = served.connect()
    connection.sendall(
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()

    answer = read_all(connection, 10)
    connection.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 8


@pytest.mark.docker
def test_a_client_that_hangs_up_mid_body_is_one_quiet_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """#11: a client that disconnects mid-body logs no ClientDisconnect traceback."""
    log = io.StringIO()
    servicelog.configure("json", "info", stream=log)
    caplog.set_level(logging.INFO)
    try:
        connection = served.connect()
        connection.sendall(
            b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        time.sleep(0.3)
        connection.close()
        wait_until(lambda: "delivery" in log.getvalue(), 5, "the delivery's line")
    finally:
        servicelog.configure("text")

    assert "Traceback" not in caplog.text and "ClientDisconnect" not in caplog.text
    assert "Traceback" not in log.getvalue()
    [line] = [json.loads(x) for x in log.getvalue().splitlines() if '"delivery"' in x]
    assert "disconnected" in line["reason"]


@pytest.mark.docker
@pytest.mark.parametrize("processes", [1, 2])
def test_hookbuild_serve_times_out_half_sent_headers_in_every_serving_mode(
    redis_url: str, docker_host: str, tmp_path: Path, processes: int
) -> None:
    """#11: `hookbuild serve`, in one process or several, closes connections whose headers
    are not complete within server.header_timeout_seconds, and answers meanwhile."""
    port = free_port()
    config = tmp_path / "builds.yml"
    config.write_text(
        f"state_dir: {tmp_path}\n"
        f"server: {{listen: '127.0.0.1:{port}', header_timeout_seconds: 1}}\n"
        "repositories: []\n"
    )
    env = {**docker_env(docker_host), "PYTHONPATH": os.getcwd()}
    argv = ["serve", "--config", str(config), "--redis-url", redis_url]
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", *argv, "--processes", str(processes)], env=env
    )
    try:
        wait_until(lambda: port_open(port), 30, "hookbuild serve")
        served = Served(port)
        slow = [served.connect() for _ in range(10)]
        for connection in slow:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        health = httpx.get(f"{served.url}/healthz", timeout=5)
        deadline = started + 5
        closed = [read_all(c, max(0.1, deadline - time.monotonic())) for c in slow]
        for connection in slow:
            connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    assert health.status_code == 200
    assert all(c.startswith(b"HTTP/1.1 408") for c in closed), closed[0]
