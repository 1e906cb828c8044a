"""BuildKit's progress, as the engine streams it, made into the lines a user reads.

With `version=2` the engine builds with BuildKit and reports progress as `moby.buildkit.trace`
messages: each a base64 protobuf `StatusResponse` (moby/buildkit's control.proto) of
vertexes (a step: its name, cached, started, completed, error), statuses (a step's parts:
"exporting layers", "naming to ...") and logs (a step's output). `BuildKitProgress` turns
them into the lines `docker build --progress=plain` prints:

    #5 [2/3] COPY src/ /src/
    #5 DONE 0.1s
    #6 [3/3] RUN make
    #6 0.213 compiling...
    #6 CACHED

The three messages are read straight from the wire format: the `protobuf` package would
need classes generated from buildkit's .proto files (and protoc) for these dozen fields.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from builder.logsink import DEFAULT_MAX_LINE_CHARS, LineAssembler, LineSink

TRACE_ID = "moby.buildkit.trace"


class TraceError(ValueError):
    """A trace message that is not the protobuf it should be (BuildKitProgress notes it
    in the log and goes on)."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise TraceError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one message: ints for varints, bytes for the rest."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            pos += length
        elif wire in (1, 5):  # fixed 64 and 32 bits: no field we read, skipped
            size = 8 if wire == 1 else 4
            value = data[pos : pos + size]
            pos += size
        else:
            raise TraceError(f"wire type {wire} in field {number}")
        if pos > len(data):
            raise TraceError("truncated message")
        yield number, value


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _timestamp(value: int | bytes) -> float:
    """A google.protobuf.Timestamp in seconds."""
    seconds = nanos = 0
    if isinstance(value, bytes):
        for number, part in _fields(value):
            if number == 1 and isinstance(part, int):
                seconds = part
            elif number == 2 and isinstance(part, int):
                nanos = part
    return seconds + nanos / 1e9


@dataclass
class Vertex:
    digest: str = ""
    name: str = ""
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Vertex:
        vertex = cls()
        for number, value in _fields(data):
            if number == 1:
                vertex.digest = _text(value)
            elif number == 3:
                vertex.name = _text(value)
            elif number == 4:
                vertex.cached = bool(value)
            elif number == 5:
                vertex.started = _timestamp(value)
            elif number == 6:
                vertex.completed = _timestamp(value)
            elif number == 7:
                vertex.error = _text(value)
        return vertex


@dataclass
class VertexStatus:
    id: str = ""
    vertex: str = ""
    name: str = ""
    completed: bool = False

    @classmethod
    def parse(cls, data: bytes) -> VertexStatus:
        status = cls()
        for number, value in _fields(data):
            if number == 1:
                status.id = _text(value)
            elif number == 2:
                status.vertex = _text(value)
            elif number == 3:
                status.name = _text(value)
            elif number == 8:
                status.completed = True
        return status


@dataclass
class VertexLog:
    vertex: str = ""
    message: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> VertexLog:
        log = cls()
        for number, value in _fields(data):
            if number == 1:
                log.vertex = _text(value)
            elif number == 4 and isinstance(value, bytes):
                log.message = value
        return log


@dataclass
class StatusResponse:
    vertexes: list[Vertex] = field(default_factory=list)
    statuses: list[VertexStatus] = field(default_factory=list)
    logs: list[VertexLog] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> StatusResponse:
        response = cls()
        for number, value in _fields(data):
            if not isinstance(value, bytes):
                continue
            if number == 1:
                response.vertexes.append(Vertex.parse(value))
            elif number == 2:
                response.statuses.append(VertexStatus.parse(value))
            elif number == 3:
                response.logs.append(VertexLog.parse(value))
        return response

    @classmethod
    def decode(cls, aux: str) -> StatusResponse:
        """The `aux` of a trace message: base64 of the protobuf."""
        try:
            return cls.parse(base64.b64decode(aux, validate=True))
        except (binascii.Error, IndexError) as exc:
            raise TraceError(str(exc)) from exc


@dataclass
class _Step:
    number: int
    name: str
    started: float | None = None
    ended: bool = False
    partial: LineAssembler = field(default_factory=LineAssembler)
    statuses_done: set[str] = field(default_factory=set)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=40))


class BuildKitProgress:
    """Renders the trace into lines for `sink`, numbered by step as BuildKit's plain
    progress does; keeps each step's last lines for the error a failed build raises."""

    def __init__(self, sink: LineSink, max_line: int = DEFAULT_MAX_LINE_CHARS) -> None:
        self._sink = sink
        self._max_line = max_line
        self._steps: dict[str, _Step] = {}
        self._failed: _Step | None = None
        self._noted_unreadable = False

    def feed(self, aux: str) -> None:
        try:
            response = StatusResponse.decode(aux)
        except TraceError as exc:
            # Only the log loses by it: whether the build worked comes in the engine's own
            # error messages, not in the trace. Said once, not for every message.
            if not self._noted_unreadable:
                self._sink(f"==> note: unreadable BuildKit progress ({exc}); the build goes on")
                self._noted_unreadable = True
            return
        for vertex in response.vertexes:
            self._vertex(vertex)
        for status in response.statuses:
            self._status(status)
        for log in response.logs:
            self._log(log)

    def failing_lines(self) -> list[str]:
        """The failed step's lines, from its header on; else nothing."""
        return list(self._failed.lines) if self._failed else []

    def flush(self) -> None:
        for step in self._steps.values():
            self._flush_step(step)

    def _new_step(self, digest: str, name: str) -> _Step:
        step = _Step(len(self._steps) + 1, name, partial=LineAssembler(self._max_line))
        self._steps[digest] = step
        self._emit(step, f"#{step.number} {name}")
        return step

    def _emit(self, step: _Step, line: str) -> None:
        step.lines.append(line)
        self._sink(line)

    def _vertex(self, vertex: Vertex) -> None:
        known = self._steps.get(vertex.digest)
        if known is None and vertex.started is None and not vertex.cached:
            return  # not begun: its header comes when it starts, numbered in that order
        step = known or self._new_step(vertex.digest, vertex.name)
        if step.ended:
            return
        if vertex.started is not None:
            step.started = vertex.started
        if vertex.cached:
            step.ended = True
            self._emit(step, f"#{step.number} CACHED")
        # A step's unfinished last line stays unfinished at its end: BuildKit can send the
        # end before the rest of the step's output (seen under load, a line cut in two).
        elif vertex.error:
            step.ended = True
            self._emit(step, f"#{step.number} ERROR: {vertex.error}")
            self._failed = step
        elif vertex.completed is not None:
            step.ended = True
            took = vertex.completed - (step.started or vertex.completed)
            self._emit(step, f"#{step.number} DONE {took:.1f}s")

    def _status(self, status: VertexStatus) -> None:
        step = self._steps.get(status.vertex)
        if step is None or not status.completed or status.id in step.statuses_done:
            return
        step.statuses_done.add(status.id)
        self._emit(step, f"#{step.number} {status.name or status.id} done")

    def _log(self, log: VertexLog) -> None:
        step = self._steps.get(log.vertex)
        if step is None:
            return
        for line in step.partial.feed(log.message.decode("utf-8", "replace")):
            self._emit(step, f"#{step.number} {line}")

    def _flush_step(self, step: _Step) -> None:
        rest = step.partial.rest()
        if rest:
            self._emit(step, f"#{step.number} {rest}")
