"""The build log's lines that hookbuild's readers look for, in one place: the pipeline
counts steps and cache hits with them, `hookbuild logs` marks steps, and the build page
gets them as JavaScript regular expressions (the same syntax for these), so the three
never disagree on what a step is. Each is meant for `match`, from a line's start.
"""

from __future__ import annotations

import re

# The classic builder's step header: "Step 2/7 : RUN make".
CLASSIC_STEP = re.compile(r"Step \d+/\d+ : ")
# BuildKit's, as `docker build --progress=plain` prints them (builder/build/docker/buildkit.py): a
# Dockerfile step's first line, "#6 [3/3] RUN make" or "#2 [builder 1/4] FROM ..."; its
# cache hit, "#6 CACHED"; its failure, "#6 ERROR: ...".
BUILDKIT_STEP = re.compile(r"#(\d+) \[(?:[^\]\s]+ )?\d+/\d+\] ")
BUILDKIT_CACHED = re.compile(r"#(\d+) CACHED$")
BUILDKIT_ERROR = re.compile(r"#(\d+) ERROR: ")
# BuildKit drops a step's output past its log limits (on Docker 20.10's defaults, past 200
# KiB a second), and says so in it: "#6 [output clipped, log limit 200KiB/s reached]".
BUILDKIT_CLIPPED = re.compile(r"#\d+ \[output clipped, log limit .+ reached\]$")


def for_javascript() -> dict[str, str]:
    """The patterns the build page marks lines with, anchored as `match` is."""
    return {
        "classic_step": "^" + CLASSIC_STEP.pattern,
        "buildkit_step": "^" + BUILDKIT_STEP.pattern,
        "buildkit_error": "^" + BUILDKIT_ERROR.pattern,
    }
