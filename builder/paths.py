"""Resolve a rule's dockerfile and context inside a checkout, refusing any way out of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import UnsafePathError


@dataclass(frozen=True)
class BuildPaths:
    context: Path  # absolute, inside the checkout
    dockerfile: Path  # absolute, inside the checkout


def _inside(root: Path, relative: str, what: str) -> Path:
    if os.path.isabs(relative):
        raise UnsafePathError(f"{what} {relative!r} must be relative to the repository root")
    if ".." in Path(relative).parts:
        raise UnsafePathError(f"{what} {relative!r} may not contain '..'")
    resolved = Path(os.path.realpath(root / relative))
    real_root = Path(os.path.realpath(root))
    if resolved != real_root and real_root not in resolved.parents:
        raise UnsafePathError(
            f"{what} {relative!r} leaves the repository (a symlink points outside)"
        )
    return resolved


def resolve_build_paths(checkout: Path, context: str, dockerfile: str) -> BuildPaths:
    """Both paths are relative to the repository root, as in `docker build -f FILE CONTEXT`."""
    context_path = _inside(checkout, context, "context")
    dockerfile_path = _inside(checkout, dockerfile, "dockerfile")
    if not context_path.is_dir():
        raise UnsafePathError(f"context {context!r} is not a directory in the repository")
    if not dockerfile_path.is_file():
        raise UnsafePathError(f"dockerfile {dockerfile!r} is not a file in the repository")
    return BuildPaths(context_path, dockerfile_path)
