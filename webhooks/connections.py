"""Connections that cannot wear the server down (slowloris and its kin).

uvicorn closes a kept-alive connection that stays idle, but a connection that never
finishes its headers, or trickles a body that nobody reads, is kept forever; with
enough of them the process runs out of descriptors and stops answering webhooks. This
protocol, uvicorn's httptools one plus three bounds, closes them:

- a request's line and headers must be complete `header_timeout` seconds after the
  connection opens or the request starts (408), and hold at most `max_header_bytes` (431);
- its body must be complete `body_timeout` (plus a grace, so that an endpoint that reads
  its body answers 408 first, webhooks/body.py) after its headers;
- past `max_connections` open connections, a new one gets a 503 and is closed.

`serve` passes it to uvicorn as `Config(http=GuardedProtocol)`, with the bounds on a
`GuardedConfig`, which pickles into each serving process of `server.processes`.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from builder.config import ServerConfig
from runners.servicelog import get_logger

log = get_logger(__name__)

BODY_GRACE_SECONDS = 5.0
# Descriptors a serving process needs besides its clients' (Redis, dockerd, logs, ...).
SPARE_DESCRIPTORS = 256


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024

    @classmethod
    def from_server(cls, server: ServerConfig) -> ConnectionLimits:
        return cls(
            header_timeout=server.header_timeout_seconds,
            body_timeout=server.body_timeout_seconds,
            max_connections=server.max_connections,
            max_header_bytes=server.max_header_bytes,
        )


class GuardedConfig(uvicorn.Config):
    """uvicorn's settings, plus the bounds `GuardedProtocol` reads from them."""

    connection_limits: ConnectionLimits = ConnectionLimits()


def guarded_config(app: Any, server: ServerConfig, **settings: Any) -> GuardedConfig:
    """`uvicorn.Config(app, **settings)` serving with `GuardedProtocol` under `server`'s bounds."""
    config = GuardedConfig(app, http=GuardedProtocol, **settings)
    config.connection_limits = ConnectionLimits.from_server(server)
    return config


def _answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\n\r\n" + text
    )


HEADERS_TOO_SLOW = _answer(b"408 Request Timeout", b'{"error": "headers too slow"}')
BODY_TOO_SLOW = _answer(b"408 Request Timeout", b'{"error": "body too slow"}')
HEADERS_TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large", b'{"error": "headers too large"}'
)
TOO_MANY = _answer(b"503 Service Unavailable", b'{"error": "too many connections; try again"}')


class GuardedProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self.deadline: asyncio.TimerHandle | None = None
        self.awaiting_headers = False
        self.header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._close(TOO_MANY, "too many connections")
            return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.awaiting_headers and not self.transport.is_closing():
            # Counted after parsing: a chunk that completes the headers may carry a body.
            self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self._close(HEADERS_TOO_LARGE, "headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self.awaiting_headers:  # the next request on a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._disarm()
        self.awaiting_headers = False
        self.deadline = self.loop.call_later(
            self.limits.body_timeout + BODY_GRACE_SECONDS, self._close, BODY_TOO_SLOW, "body"
        )
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _await_headers(self) -> None:
        self._disarm()
        self.awaiting_headers = True
        self.header_bytes = 0
        self.deadline = self.loop.call_later(
            self.limits.header_timeout, self._close, HEADERS_TOO_SLOW, "headers"
        )

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _close(self, answer: bytes, why: str) -> None:
        self._disarm()
        self.awaiting_headers = False
        if self.transport.is_closing():
            return
        # Debug only: a flood of these must not flood the service log too.
        log.debug("connection closed", why=why, client=self.client)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(answer)
        self.transport.close()


def ensure_descriptors(max_connections: int) -> None:
    """Raise this process's soft descriptor limit (inherited by the serving processes) to
    what `max_connections` needs, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))
