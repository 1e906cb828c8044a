"""Retry what failed for a transient reason (a registry 5xx or refused connection, a network
error while fetching), with exponential backoff; never a build's own failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from builder.errors import HookbuildError
from builder.logsink import LineSink

T = TypeVar("T")
log = structlog.get_logger(__name__)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, HookbuildError) and error.transient


def with_retries(
    action: Callable[[], T], what: str, attempts: int, backoff: float, say: LineSink
) -> T:
    def tell(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        attempt = state.attempt_number + 1
        say(f"==> {what} failed ({error}); attempt {attempt} of {attempts} in {wait:.0f}s")
        log.warning("retrying", what=what, error=str(error), attempt=attempt, of=attempts)

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff, min=backoff, max=60),
        retry=retry_if_exception(is_transient),
        before_sleep=tell,
        reraise=True,
    )
    return retrying(action)
