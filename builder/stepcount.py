"""Counting a build's steps and cache hits in its log, as the lines pass (builder.logpatterns)."""

from __future__ import annotations

from builder.logpatterns import BUILDKIT_CACHED, BUILDKIT_CLIPPED, BUILDKIT_STEP
from builder.logsink import LineSink

CLIPPED_NOTE = (
    "==> note: the engine's BuildKit left out part of this step's output. Start dockerd "
    "with BUILDKIT_STEP_LOG_MAX_SIZE and BUILDKIT_STEP_LOG_MAX_SPEED set high (bytes, and "
    "bytes a second; scripts/up sets 1073741824) to keep every line, or build with "
    "`builder: classic`"
)


class StepCounter:
    """Passes build output on, counting steps and the ones the engine took from its cache:
    the classic builder's "Step 2/3 : ..." and "---> Using cache", or BuildKit's
    "#6 [2/3] ..." and "#6 CACHED" (builder/build/docker/buildkit.py). Where BuildKit
    clipped a step's output, it says once how to keep all of it."""

    def __init__(self, say: LineSink) -> None:
        self.say = say
        self.steps = 0
        self.cached = 0
        self._buildkit_steps: set[str] = set()
        self._clipped = False

    def __call__(self, line: str) -> None:
        if line.startswith("Step "):
            self.steps += 1
        elif line.strip() == "---> Using cache":
            self.cached += 1
        elif line.startswith("#"):
            if step := BUILDKIT_STEP.match(line):
                self.steps += 1
                self._buildkit_steps.add(step[1])
            elif (hit := BUILDKIT_CACHED.match(line)) and hit[1] in self._buildkit_steps:
                self.cached += 1
        self.say(line)
        if not self._clipped and BUILDKIT_CLIPPED.match(line):
            self._clipped = True
            self.say(CLIPPED_NOTE)
