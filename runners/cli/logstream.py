"""Read a build's log from the server, as the dashboard does: `GET /api/builds/{id}/log`,
and with `?follow=true` its Server-Sent Events, one event per line.

A dropped connection is picked up again with `Last-Event-ID`, so every line arrives once,
in order, whatever the network does. Only the standard library: the CLI stays light.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from runners.errors import LogStreamError, ServerUnreachable

READ_TIMEOUT_SECONDS = 60.0  # the server sends a keep-alive every 15 s
RECONNECTS = 5


@dataclass(frozen=True)
class ServerEvent:
    event: str  # "message" for a log line; "status"; "end"
    data: str
    id: str | None


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The event-stream format (WHATWG HTML, "Server-sent events"): fields up to a blank
    line make one event; lines starting with ':' are comments (keep-alives)."""
    event, data, event_id = "message", list[str](), None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent(event, "\n".join(data), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class LogClient:
    """The hookbuild server's log endpoints, for one caller."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LogStreamError(f"the server's address must be http(s)://..., not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _open(self, path: str, headers: dict[str, str] | None = None) -> Any:
        # http(s) only, checked in __init__: never file:// or another scheme.
        url = f"{self.base_url}{path}"
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=READ_TIMEOUT_SECONDS)  # noqa: S310
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]  # ours; another body is shown as it is
            raise LogStreamError(f"{self.base_url}{path}: {exc.code} {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ServerUnreachable(
                f"cannot reach the hookbuild server at {self.base_url} ({exc}): is "
                "`hookbuild up` or `hookbuild serve` running there? (--server)"
            ) from exc

    def build(self, build_id: str) -> dict[str, Any]:
        with self._open(f"/api/builds/{build_id}") as response:
            answer: dict[str, Any] = json.load(response)
            return answer

    def log(self, build_id: str) -> Iterator[str]:
        """The log's lines as they arrive: a long log is never held whole."""
        with self._open(f"/api/builds/{build_id}/log") as response:
            for raw in response:
                yield raw.decode(errors="replace").rstrip("\n")

    def follow(
        self,
        build_id: str,
        on_line: Callable[[str], None],
        on_status: Callable[[str], None] = lambda _status: None,
    ) -> str:
        """Call `on_line` for each line as it comes; return the build's final status."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                with self._open(f"/api/builds/{build_id}/log?follow=true", headers) as response:
                    failures = 0
                    for event in parse_events(line.decode() for line in response):
                        if event.event == "end":
                            return str(json.loads(event.data)["status"])
                        if event.event == "status":
                            on_status(event.data)
                        elif event.event == "message":
                            on_line(event.data)
                            last_id = event.id
            except ServerUnreachable:
                if failures >= RECONNECTS:
                    raise
            except (OSError, http.client.HTTPException):  # cut mid-stream
                if failures >= RECONNECTS:
                    raise LogStreamError(
                        f"lost the log stream of {build_id} {RECONNECTS} times"
                    ) from None
            # The stream closed early (a restart, a proxy): go on from the last line.
            failures += 1
            time.sleep(min(0.25 * 2**failures, 5.0))
