"""The service's own log lines: the text renderer writes what structlog's ConsoleRenderer
would, line for line, at a fraction of its cost."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
import structlog

from runners import servicelog
from runners.servicelog import TextRenderer

EVENTS: list[dict[str, Any]] = [
    # A webhook's line, as the receiver logs it.
    {
        "timestamp": "2026-11-28T05:39:31.123456Z",
        "level": "info",
        "event": "delivery",
        "logger": "webhooks.receiver",
        "forge": "github",
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "repository": "Codertocat/Hello-World",
        "status": 202,
        "outcome": "built",
        "reason": None,
        "builds": ["0123456789abcdef0123"],
    },
    # Values that must be quoted, and those that need not be.
    {
        "level": "warning",
        "event": "a longer event than the thirty characters it is padded to",
        "spaced": "two words",
        "quoted": 'say "hi"',
        "single": "it's",
        "equals": "a=b",
        "newline": "one\ntwo",
        "tab": "a\tb",
        "empty": "",
        "unicode": "état",
        "number": 1.5,
        "flag": True,
        "mapping": {"a": [1, 2]},
    },
    # Columns missing, or under the standard library's key.
    {"event": "bare"},
    {"level": "error", "event": "from rq", "logger_name": "rq.worker", "build_id": "abc"},
    {"timestamp": "", "level": "debug", "event": "", "x": 1},
    {"event": "both names", "logger": "a", "logger_name": "b"},
    {"level": "critical", "event": 42, "exception_count": 0},
]


@pytest.mark.parametrize("event", EVENTS, ids=range(len(EVENTS)))
def test_text_lines_are_consoles_lines(event: dict[str, Any]) -> None:
    console = structlog.dev.ConsoleRenderer(colors=False)
    assert TextRenderer()(None, "info", dict(event)) == console(None, "info", dict(event))


def test_a_line_with_an_exception_is_printed_with_its_traceback() -> None:
    try:
        raise ValueError("the cause")
    except ValueError:
        info = sys.exc_info()
    event = {"level": "error", "event": "failed", "exc_info": info}
    console = structlog.dev.ConsoleRenderer(colors=False)(None, "error", dict(event))
    line = TextRenderer()(None, "error", dict(event))
    # ConsoleRenderer's own traceback (rich's, where installed, shows the caller's locals).
    assert line.splitlines()[0] == console.splitlines()[0] == "[error    ] failed"
    assert "ValueError" in line and "the cause" in line


def test_the_text_format_logs_through_it() -> None:
    out = io.StringIO()
    servicelog.configure("text", "info", stream=out)
    try:
        servicelog.get_logger("tests.servicelog").info("hello", who="world", n=2)
    finally:
        servicelog.configure("text")
    line = out.getvalue()
    assert line.endswith(
        " [info     ] hello                          [tests.servicelog] n=2 who=world\n"
    )
