"""The service's own logs: readable text by default, JSON lines on request.

Ours go straight through structlog (no standard-library detour: a line costs ~50 us of
text or ~25 us of JSON, which matters on every webhook); uvicorn's and RQ's come through a
handler on the root logger. Both are rendered by the same processors to the same output,
so a JSON run prints nothing but JSON. A build's job binds `build_id` to the context, and
RQ's own lines about a job get it from the job's description, so every line about a build
names it.
(A build's *log*, the lines a user follows, is separate: it lives in Redis.)
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from builder.printable import printable, printable_lines

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
FORMAT_ENV = "HOOKBUILD_LOG_FORMAT"
LEVEL_ENV = "HOOKBUILD_LOG_LEVEL"


def get_logger(name: str) -> Any:
    """A structlog logger; `Any` because structlog's bound loggers are dynamically typed."""
    return structlog.get_logger(logger_name=name)


class _Output:
    """Where lines go. Loggers made before a `configure` write here too, so it can move."""

    stream: IO[str] = sys.stderr

    def write(self, text: str) -> None:
        self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


_OUTPUT = _Output()


def _logger_key(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    # Ours carry `logger_name`; the standard library's get `logger`: one key for both.
    if "logger_name" in event:
        event["logger"] = event.pop("logger_name")
    return event


@contextlib.contextmanager
def about_build(build_id: str) -> Iterator[None]:
    """Every line logged inside names this build."""
    with structlog.contextvars.bound_contextvars(build_id=build_id):
        yield


# RQ's lines name a job by its description, which starts "build <id> of" (the queue sets
# it), or by its id ("(<id>)", "job <id>"); either way the id is the build's.
_RQ_BUILD_ID = re.compile(r"\b(?:build|job) ([0-9a-f]{16,20})\b|\(([0-9a-f]{16,20})\)")


def _rq_build_id(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    if "build_id" in event or not str(event.get("logger", "")).startswith("rq."):
        return event
    found = _RQ_BUILD_ID.search(str(event.get("event", "")))
    if found:
        event["build_id"] = found.group(1) or found.group(2)
    return event


_CURRENT = ["text", "info"]


class TextRenderer:
    """The lines of structlog's ConsoleRenderer(colors=False), made directly: `timestamp
    [level    ] event (padded to 30) [logger] key=value ...`, keys sorted, a value bare if
    it is a plain word, else its repr. ConsoleRenderer builds each column through its own
    formatter and a StringIO, ~40 us a line, and every webhook logs one; this takes ~10.
    A line with an exception or a stack goes to ConsoleRenderer, which prints those."""

    _COLUMNS = ("timestamp", "level", "event", "logger", "logger_name")
    _LEVEL_WIDTH = len("exception")  # the longest level name
    _EVENT_WIDTH = 30
    _QUOTED = frozenset(" =\"'")

    def __init__(self) -> None:
        self._console = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        if "exc_info" in event or "exception" in event or "stack" in event:
            return printable_lines(self._console(logger, name, event))
        timestamp, level, message, logger_name, other_name = (
            event.pop(key, None) for key in self._COLUMNS
        )
        parts = [] if timestamp is None else [str(timestamp)]
        if level is not None:
            parts.append(f"[{level!s:<{self._LEVEL_WIDTH}}]")
        if message is not None:
            # Messages name what came in (uvicorn's request lines, RQ's job lines): no
            # control character reaches the terminal or the log file raw.
            text = str(message)
            if not text.isprintable():
                text = printable(text)
            parts.append(f"{text:<{self._EVENT_WIDTH}}")
        parts.extend(f"[{n}]" for n in (logger_name, other_name) if n is not None)
        parts.extend(f"{key}={self._shown(event[key])}" for key in sorted(event))
        return " ".join(part for part in parts if part).rstrip(" ")

    @classmethod
    def _shown(cls, value: object) -> str:
        """Bare if a plain word; else its repr, which escapes every control character
        (a name from a payload may hold `ESC]0;...BEL`), as does a list's or a dict's."""
        if isinstance(value, str) and value.isprintable() and cls._QUOTED.isdisjoint(value):
            return value
        shown = repr(value)
        # str, list, dict and int reprs escape; another object's own repr may not.
        return shown if shown.isprintable() else printable(shown)


def current() -> tuple[str, str]:
    """The format and level last configured (for processes started from this one)."""
    return _CURRENT[0], _CURRENT[1]


def configure(log_format: str = "text", level: str = "info", stream: IO[str] | None = None) -> None:
    """Route every log line of this process through structlog, as text or JSON lines."""
    if log_format not in FORMATS:
        known = ", ".join(FORMATS)
        raise ValueError(f"unknown log format {log_format!r}: use one of {known}")
    _CURRENT[:] = [log_format, level]
    _OUTPUT.stream = stream or sys.stderr
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    rendering: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if log_format == "json"
        else [TextRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _logger_key,
            stamp,
            *rendering,
        ],
        logger_factory=structlog.WriteLoggerFactory(file=_OUTPUT),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Not cached: a later `configure` (tests, `up` after its options) must reach every
        # logger, and the cost is a few microseconds a line.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _rq_build_id,
            stamp,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(_OUTPUT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # RQ adds its own coloured handlers only where none is in effect; ours is, at the root.
    logging.getLogger("rq.worker").propagate = True
