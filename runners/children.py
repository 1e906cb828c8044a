"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
# The symbols this process has loaded, libc's among them. `find_library("c")` would run
# `ldconfig -p` in each process that asks, every build's work horse included (~4 ms).
_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends `sig` to this process when its parent dies, even by SIGKILL,
    so workers, their builds and the private redis-server never run on their own."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, sig)


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), preexec_fn=die_with_parent, **kwargs)
