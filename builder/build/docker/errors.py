"""The one place docker-py's and requests' errors become ours (builder.errors'
`from_docker_error` words them): the engine's methods run inside `translated`, and know
no foreign exception but the few that are an answer (an image not found)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests
import urllib3.exceptions

from builder.engineaddress import unreachable_reason
from builder.errors import EngineError, RegistryError, from_docker_error

# What a request to the engine raises when it fails: docker-py's errors and requests'.
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
# A stream from the engine that breaks off: those and, for streams read from the raw
# response (BuildKit's), urllib3's own.
STREAM_ERRORS = (*ENGINE_ERRORS, urllib3.exceptions.HTTPError)


def translate(exc: Exception, action: str, address: str | None) -> EngineError:
    """docker-py's or requests' `exc`, raised during `action` on the engine at `address`."""
    return from_docker_error(exc, action, address)


@contextmanager
def translated(
    action: str, address: str | None, *, bare_when_unreachable: bool = False
) -> Iterator[None]:
    """Run a request to the engine at `address`; its failure raises an `EngineError` that
    says `action`. `bare_when_unreachable`: when not reaching the engine is all there is to
    say (`the Docker engine is not reachable at unix:///x.sock: no such socket`)."""
    try:
        yield
    except ENGINE_ERRORS as exc:
        if bare_when_unreachable and unreachable_reason(exc):
            action = ""
        raise translate(exc, action, address) from exc


@contextmanager
def translated_push(action: str, address: str | None) -> Iterator[None]:
    """`translated`, where the engine's refusal is the registry's (a push): a transient
    `RegistryError`."""
    with translated(action, address):
        try:
            yield
        except docker.errors.APIError as exc:
            raise RegistryError(f"{action}: {exc.explanation or exc}", transient=True) from exc


def words_of(exc: Exception) -> str:
    """The engine's words for a failed request, when they are only to be told (a pull)."""
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc)
