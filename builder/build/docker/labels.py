"""Build-time labels for the classic builder, which makes each `--label` a step of its own."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


def labels_in_one_step(
    dockerfile: Path, labels: Mapping[str, str], target: str | None, scratch: Path
) -> tuple[Path, Mapping[str, str]]:
    """The legacy builder turns each build-time label into a step of its own, each a
    container to start and commit (about 0.1s apiece). One LABEL line appended to a copy of
    the Dockerfile does the same in one step. The copy lives in `scratch`, outside the
    context: docker-py then sends it under a random name that the context's .dockerignore
    lists, so the engine drops it before the build and `COPY . .` never sees it. With a
    `target` stage the labels must go on that stage, so they stay build-time labels."""
    if not labels or target:
        return dockerfile, labels
    labelled = scratch / f"{dockerfile.name}.labelled-{os.getpid()}"
    labelled.write_text(dockerfile.read_text().rstrip("\n") + f"\nLABEL {label_line(labels)}\n")
    return labelled, {}


def label_line(labels: Mapping[str, str]) -> str:
    """The arguments of one LABEL instruction that sets every label."""
    return " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(labels.items()))
