"""A build's stream from the engine, read: its lines to the sink, the image id, and the
first error with the failing step's lines. BuildKit's progress comes as trace messages
(builder/build/docker/buildkit.py), the classic builder's as text."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from builder.build.docker.buildkit import TRACE_ID, BuildKitProgress
from builder.errors import BuildFailed
from builder.logsink import DEFAULT_MAX_LINE_CHARS, LineAssembler, LineSink


class _LineSplitter:
    """Docker's `stream` chunks carry partial lines; hand on whole lines, keep a tail."""

    def __init__(
        self, sink: LineSink, tail: int = 40, max_line: int = DEFAULT_MAX_LINE_CHARS
    ) -> None:
        self._sink = sink
        self._lines = LineAssembler(max_line)
        self.tail: deque[str] = deque(maxlen=tail)

    def feed(self, text: str) -> None:
        for line in self._lines.feed(text):
            self.emit(line)

    def emit(self, line: str) -> None:
        if line.startswith("Step "):
            self.tail.clear()  # the tail shows the failing step, from its header on
        self.tail.append(line)
        self._sink(line)

    def flush(self) -> None:
        rest = self._lines.rest()
        if rest:
            self.emit(rest)


def failure_reason(chunk: Mapping[str, Any], fallback: str) -> str | None:
    """The error an engine stream reports in `chunk`, if it reports one."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    return str(detail.get("message") or chunk.get("error") or fallback).strip()


def _without_session(reason: str) -> str:
    """BuildKit's reason, with what it means when the build needed a client session."""
    if "no active sessions" not in reason:
        return reason
    return (
        f"{reason} (hookbuild runs BuildKit without a client session, which "
        "RUN --mount=type=secret and type=ssh need)"
    )


class BuildOutput:
    """A build's stream, read to its end: see the module's docstring."""

    def __init__(
        self, sink: LineSink, buildkit: bool, max_line: int = DEFAULT_MAX_LINE_CHARS
    ) -> None:
        # With BuildKit, the engine's own lines ("Successfully ...").
        self.lines = _LineSplitter(sink, max_line=max_line)
        self.progress = BuildKitProgress(sink, max_line) if buildkit else None
        self.image_id: str | None = None
        self.failure: BuildFailed | None = None

    def read(self, stream: Iterable[dict[str, Any]]) -> None:
        # To the end even after an error: the engine closes the stream then, and a
        # half-read stream would keep its connection open.
        for chunk in stream:
            if self.progress is not None and chunk.get("id") == TRACE_ID:
                self.progress.feed(str(chunk.get("aux", "")))
            elif "stream" in chunk:
                self.lines.feed(chunk["stream"])
            reason = failure_reason(chunk, "docker build failed")
            if reason is not None and self.progress is not None:
                reason = _without_session(reason)
            if reason is not None and self.failure is None:
                self.flush()
                self.lines.emit(f"ERROR: {reason}")
                failing = self.progress.failing_lines() if self.progress else []
                self.failure = BuildFailed(reason, failing or list(self.lines.tail))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                self.image_id = str(aux["ID"])

    def flush(self) -> None:
        if self.progress is not None:
            self.progress.flush()
        self.lines.flush()
