"""BuildKit's progress messages into log lines, from messages written here byte by byte."""

from __future__ import annotations

import pytest

from builder.build.docker.buildkit import BuildKitProgress, StatusResponse, TraceError
from tests.buildkit_messages import aux, field, log, status, vertex


def test_steps_are_numbered_as_they_start_with_their_output_and_their_end() -> None:
    lines: list[str] = []
    progress = BuildKitProgress(lines.append)

    progress.feed(aux(vertex("sha256:a", "[1/3] FROM base"), vertex("sha256:b", "[2/3] RUN make")))
    progress.feed(aux(vertex("sha256:b", "[2/3] RUN make", started=10.0)))
    progress.feed(aux(log("sha256:b", b"compil"), log("sha256:b", b"ing\r\nlinked\npart")))
    progress.feed(aux(vertex("sha256:a", "[1/3] FROM base", cached=True, started=10.0)))
    progress.feed(aux(status("sha256:b", "writing", False), status("sha256:b", "writing", True)))
    progress.feed(aux(status("sha256:b", "writing", True)))
    progress.feed(aux(vertex("sha256:b", "[2/3] RUN make", started=10.0, completed=12.34)))
    progress.feed(aux(vertex("sha256:b", "[2/3] RUN make", started=10.0, completed=12.34)))

    assert lines == [
        "#1 [2/3] RUN make",  # the first to start, not the first listed
        "#1 compiling",  # a line split across two messages
        "#1 linked",
        "#2 [1/3] FROM base",
        "#2 CACHED",
        "#1 writing done",  # once, when done
        "#1 DONE 2.3s",  # once
    ]
    progress.flush()
    assert lines[-1] == "#1 part"  # the unfinished line, at the end of the build
    assert progress.failing_lines() == []


def test_output_that_comes_after_its_steps_end_still_finishes_its_line() -> None:
    """BuildKit can send a step's end before the rest of its output."""
    lines: list[str] = []
    progress = BuildKitProgress(lines.append)
    progress.feed(aux(vertex("sha256:b", "[2/2] RUN seq 1 44178", started=1.0)))
    progress.feed(aux(log("sha256:b", b"44176\n44")))
    progress.feed(aux(vertex("sha256:b", "[2/2] RUN seq 1 44178", started=1.0, completed=2.0)))
    progress.feed(aux(log("sha256:b", b"177\n44178\n")))
    progress.flush()

    assert lines == [
        "#1 [2/2] RUN seq 1 44178",
        "#1 44176",
        "#1 DONE 1.0s",
        "#1 44177",
        "#1 44178",
    ]


def test_a_failed_step_keeps_its_own_lines_for_the_error() -> None:
    lines: list[str] = []
    progress = BuildKitProgress(lines.append)
    progress.feed(aux(vertex("sha256:a", "[1/2] COPY . /", started=1.0, completed=1.5)))
    progress.feed(aux(vertex("sha256:b", "[2/2] RUN false", started=2.0)))
    progress.feed(aux(log("sha256:b", b"about to fail\n")))
    failed = vertex("sha256:b", "[2/2] RUN false", started=2.0, completed=2.1, error="exit code: 1")
    progress.feed(aux(failed))

    assert progress.failing_lines() == [
        "#2 [2/2] RUN false",
        "#2 about to fail",
        "#2 ERROR: exit code: 1",
    ]
    assert lines[-1] == "#2 ERROR: exit code: 1"


BROKEN = [
    pytest.param(aux(field(1, b"\x0a\x05ab")), id="truncated-field"),
    pytest.param(aux(b"\x0a\x80"), id="truncated-varint"),
    pytest.param(aux(b"\x0b"), id="unknown-wire-type"),
    pytest.param("not base64!", id="not-base64"),
]


@pytest.mark.parametrize("broken", BROKEN)
def test_a_message_that_is_not_buildkits_is_noted_once_and_the_rest_still_read(
    broken: str,
) -> None:
    lines: list[str] = []
    progress = BuildKitProgress(lines.append)

    progress.feed(broken)
    progress.feed(broken)
    progress.feed(aux(vertex("sha256:a", "[1/1] RUN true", started=1.0, completed=1.2)))

    [note, *rest] = lines
    assert note.startswith("==> note: unreadable BuildKit progress (")
    assert rest == ["#1 [1/1] RUN true", "#1 DONE 0.2s"]


@pytest.mark.parametrize("broken", BROKEN)
def test_the_wire_reader_refuses_what_is_not_protobuf(broken: str) -> None:
    with pytest.raises(TraceError):
        StatusResponse.decode(broken)
