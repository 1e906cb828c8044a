"""The Docker engine, through docker-py's low-level API: build, tag and push, streamed.

`APIClient.build(..., decode=True)` yields each step's output as the engine prints it (the
high-level `images.build()` would hold the whole log back until the end). Errors come inside
the stream, for builds and pushes alike, so every chunk is read.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.constants
import docker.errors
import requests
import urllib3.exceptions

from builder.build.docker.buildkit import TRACE_ID, BuildKitProgress
from builder.build.docker.context import context_body
from builder.engineaddress import engine_address, unreachable_reason
from builder.errors import BuildFailed, RegistryError, engine_gone, from_docker_error
from builder.logsink import DEFAULT_MAX_LINE_CHARS, LineAssembler, LineSink

# A stream from the engine that breaks off: docker-py's errors, requests' and, for streams
# read from the raw response (BuildKit's), urllib3's own.
_STREAM_ERRORS = (
    docker.errors.DockerException,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)
# A step killed by a signal (137: SIGKILL, 143: SIGTERM), as when the engine stops.
_KILLED = re.compile(r"\b(?:code|exit code): (?:137|143)\b")
PING_SECONDS = 5

# Transient registry trouble: worth another try. A refused login or a bad name is not.
_TRANSIENT_WORDS = (
    "connection refused",
    "timeout",
    "502",
    "503",
    "504",
    "eof",
    "reset by peer",
)


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str

    def as_auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


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


def _ping_engine(client_kwargs: dict[str, Any], timeout: int) -> tuple[str | None, str | None]:
    """The engine's API version and OS, from the headers of `/_ping`. docker-py's own
    negotiation asks `/version`, which makes the engine query containerd and runc first:
    10 to 14 ms a build here, against 2 for the ping. None for what an engine too old to
    send the headers leaves out (docker-py then negotiates)."""
    probe = docker.APIClient(
        timeout=timeout, version=docker.constants.MINIMUM_DOCKER_API_VERSION, **client_kwargs
    )
    try:
        response = probe.get(f"{probe.base_url}/_ping")
        response.raise_for_status()
        headers = response.headers
        return headers.get("Api-Version") or None, headers.get("OSType") or None
    finally:
        probe.close()


def _failure_reason(chunk: Mapping[str, Any], fallback: str) -> str | None:
    """The error an engine stream reports in `chunk`, if it reports one."""
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    return str(detail.get("message") or chunk.get("error") or fallback).strip()


def _registry_error(doing: str, reason: str) -> RegistryError:
    transient = any(word in reason.lower() for word in _TRANSIENT_WORDS)
    return RegistryError(f"{doing}: {reason}", transient=transient)


def _without_session(reason: str) -> str:
    """BuildKit's reason, with what it means when the build needed a client session."""
    if "no active sessions" not in reason:
        return reason
    return (
        f"{reason} (hookbuild runs BuildKit without a client session, which "
        "RUN --mount=type=secret and type=ssh need)"
    )


class _BuildOutput:
    """A build's stream from the engine: its lines to the sink, the image id, and the first
    error, with the failing step's lines. BuildKit's progress comes as trace messages
    (builder/build/docker/buildkit.py), the classic builder's as text."""

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
            reason = _failure_reason(chunk, "docker build failed")
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


class DockerEngine:
    def __init__(
        self,
        client: docker.APIClient,
        os_type: str | None = None,
        max_line: int = DEFAULT_MAX_LINE_CHARS,
        address: str | None = None,
    ) -> None:
        self.client = client
        self.address = address  # DOCKER_HOST, or the default socket: errors name it
        self.max_line = max_line  # a build's output line is cut past this many characters
        self._os_type = os_type  # "linux", "windows"; asked for when first needed if None
        self._has_bridge: bool | None = None  # asked for when first needed

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        timeout: int = 600,
        max_line: int = DEFAULT_MAX_LINE_CHARS,
    ) -> DockerEngine:
        """Connect as the docker CLI would: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, ..."""
        address = engine_address(environ)
        try:
            kwargs = docker.utils.kwargs_from_env(environment=dict(environ))
            version, os_type = _ping_engine(kwargs, timeout)
            client = docker.APIClient(timeout=timeout, version=version, **kwargs)
            return cls(client, os_type, max_line, address)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # Not reaching it is all there is to say: `the Docker engine is not reachable
            # at unix:///x.sock: no such socket`.
            action = "" if unreachable_reason(exc) else "connecting to the Docker engine"
            raise from_docker_error(exc, action, address) from exc

    @property
    def has_buildkit(self) -> bool:
        """Can this engine build with BuildKit as hookbuild asks it to (no client session)?
        Linux engines can, from API 1.39 (Docker 18.09) on."""
        if docker.utils.version_lt(self.client.api_version, "1.39"):
            return False
        if self._os_type is None:
            try:
                self._os_type = str(self.client.version().get("Os") or "linux")
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise self._error(exc, "asking the Docker engine its version") from exc
        return self._os_type == "linux"

    def close(self) -> None:
        self.client.close()

    def ping(self) -> None:
        try:
            self.client.ping()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, "pinging the Docker engine") from exc

    def build(
        self,
        context: Path,
        dockerfile: Path | str,
        *,
        tag: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        on_line: LineSink,
        target: str | None = None,
        cache_from: Iterable[str] = (),
        scratch: Path | None = None,
        buildkit: bool = False,
        network: str = "default",
    ) -> str:
        """Build and return the image id; raise `BuildFailed` with the failing step's output.
        `context`: a directory, or a tar file of the context (builder/build/streamcontext.py), in
        which `dockerfile` is then a name. `scratch`: a directory outside a context
        directory, for the labelled Dockerfile. `buildkit`: build with BuildKit, which sets
        the labels as it writes the image, without a step of their own. `network`: the
        RUN steps' (builder.buildnetwork): `default`, the engine's, or `none`."""
        if buildkit:
            return self._build_with_buildkit(
                context, dockerfile, tag, build_args, labels, on_line, target, cache_from, network
            )
        from_tar = context.is_file()
        if scratch is not None and not from_tar:
            dockerfile, labels = labels_in_one_step(Path(dockerfile), labels, target, scratch)
        output = _BuildOutput(on_line, buildkit=False, max_line=self.max_line)
        tar = open(context, "rb") if from_tar else None  # noqa: SIM115 - closed below
        source: dict[str, Any] = (
            {"fileobj": tar, "custom_context": True} if tar else {"path": str(context)}
        )
        try:
            output.read(
                self.client.build(
                    **source,
                    dockerfile=str(dockerfile),
                    tag=tag,
                    buildargs=dict(build_args),
                    labels=dict(labels),
                    cache_from=list(cache_from) or None,
                    target=target,
                    network_mode="none" if network == "none" else None,
                    rm=True,
                    forcerm=True,  # no stopped container is left behind by a failed step
                    pull=False,
                    decode=True,
                )
            )
        except _STREAM_ERRORS as exc:
            output.flush()
            raise self._build_error(exc, "docker build") from exc
        finally:
            if tar is not None:
                tar.close()
        return self._built(output, tag, "docker build")

    def _build_with_buildkit(
        self,
        context: Path,
        dockerfile: Path | str,
        tag: str,
        build_args: Mapping[str, str],
        labels: Mapping[str, str],
        on_line: LineSink,
        target: str | None,
        cache_from: Iterable[str],
        network: str,
    ) -> str:
        output = _BuildOutput(on_line, buildkit=True, max_line=self.max_line)
        params: dict[str, str] = {
            "version": "2",  # BuildKit
            "t": tag,
            # Inline cache metadata: the pushed image can then be another engine's cache_from.
            "buildargs": json.dumps({"BUILDKIT_INLINE_CACHE": "1", **build_args}),
            "labels": json.dumps(dict(labels)),
            "cachefrom": json.dumps(list(cache_from)),
        }
        if target:
            params["target"] = target
        try:
            # BuildKit runs RUN steps on the engine's `bridge` network by default; an engine
            # without one (--bridge=none) makes it fail where the classic builder falls back
            # to no network by itself: ask for `none` there too.
            if network == "none" or not self.has_bridge:
                params["networkmode"] = "none"
            with context_body(context, dockerfile) as (body, name):
                params["dockerfile"] = name
                # docker-py's build() has no `version` parameter: this is the request it
                # makes, through the same client, with BuildKit asked for.
                response = self.client._post(
                    self.client._url("/build"),
                    params=params,
                    data=body,
                    headers={"Content-Type": "application/x-tar"},
                    stream=True,
                    timeout=None,
                )
                self.client._raise_for_status(response)
                output.read(self.client._stream_helper(response, decode=True))
        except _STREAM_ERRORS as exc:
            output.flush()
            raise self._build_error(exc, "docker build (BuildKit)") from exc
        return self._built(output, tag, "docker build (BuildKit)")

    def _built(self, output: _BuildOutput, tag: str, action: str) -> str:
        """The image id a finished build stream reported; else raise its failure (the
        engine's own when the engine went away, which killed the step it ran)."""
        if output.failure is not None:
            why = self._unreachable(patient=bool(_KILLED.search(output.failure.reason)))
            if why is not None:
                raise engine_gone(action, why, self.address) from output.failure
            raise output.failure
        output.flush()
        return output.image_id or self._image_id(tag)

    def _build_error(self, exc: Exception, action: str) -> Exception:
        """A build's stream broke off: the engine went away, or another error."""
        why = self._unreachable(patient=True)
        return (
            engine_gone(action, why, self.address) if why is not None else self._error(exc, action)
        )

    def _unreachable(self, patient: bool) -> str | None:
        """Why the engine does not answer a ping now; None when it does. `patient`: ask
        three times over a second, for an engine on its way out that still answers."""
        for attempt in range(3 if patient else 1):
            if attempt:
                time.sleep(0.5)
            try:
                response = self.client._get(self.client._url("/_ping"), timeout=PING_SECONDS)
                response.raise_for_status()
            except _STREAM_ERRORS as exc:
                return unreachable_reason(exc) or str(exc)
        return None

    def _error(self, exc: Exception, action: str) -> Exception:
        """docker-py's error as ours, naming this engine when it did not answer."""
        return from_docker_error(exc, action, self.address)

    @property
    def has_bridge(self) -> bool:
        """Has the engine its `bridge` network, the one builds get by default? Not when
        dockerd was started with --bridge=none."""
        if self._has_bridge is None:
            try:
                bridges = self.client.networks(names=["bridge"])
            except (docker.errors.DockerException, requests.RequestException) as exc:
                raise self._error(exc, "listing the Docker engine's networks") from exc
            self._has_bridge = any(n.get("Name") == "bridge" for n in bridges)
        return self._has_bridge

    def _image_id(self, reference: str) -> str:
        try:
            return str(self.client.inspect_image(reference)["Id"])
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, f"inspecting {reference}") from exc

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        try:
            self.client.tag(image_id, repository, tag, force=True)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, f"tagging {repository}:{tag}") from exc

    def push(self, repository: str, tag: str, auth: RegistryAuth | None, on_line: LineSink) -> str:
        """Push one tag; return the manifest digest the registry reported."""
        digest = ""
        try:
            stream: Iterable[dict[str, Any]] = self.client.push(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=auth.as_auth_config() if auth else None,
            )
            failure = None
            for chunk in stream:  # to the end, even after an error (see build)
                reason = _failure_reason(chunk, "push failed")
                if reason is not None and failure is None:
                    failure = _registry_error(f"pushing {repository}:{tag}", reason)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                status = chunk.get("status")
                if status and not chunk.get("progressDetail"):
                    layer = chunk.get("id")
                    on_line(f"{layer}: {status}" if layer else status)
            if failure is not None:
                raise failure
        except docker.errors.APIError as exc:
            raise RegistryError(
                f"pushing {repository}:{tag}: {exc.explanation or exc}", transient=True
            ) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, f"pushing {repository}:{tag}") from exc
        if not digest:
            raise RegistryError(f"pushing {repository}:{tag}: the engine reported no digest")
        return digest

    def has_image_of(self, repository: str) -> bool:
        """Does the engine hold any image of this repository (any tag)?"""
        try:
            return bool(self.client.images(name=repository, quiet=True))
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, f"listing images of {repository}") from exc

    def has_image(self, reference: str) -> bool:
        try:
            self.client.inspect_image(reference)
        except docker.errors.ImageNotFound:
            return False
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, f"inspecting {reference}") from exc
        return True

    def pull(self, repository: str, tag: str, auth: RegistryAuth | None) -> bool:
        """Pull one image; False (not an error) when the registry does not have it."""
        return self._pull(repository, tag, auth) is None

    def pull_image(self, reference: str, auth: RegistryAuth | None) -> None:
        """Pull `reference` (`name[:tag]` or `name@digest`); raise `RegistryError` with the
        registry's reason, transient when worth another try."""
        why = self._pull(reference, None, auth)
        if why is not None:
            raise _registry_error(f"pulling {reference}", why)

    def _pull(self, repository: str, tag: str | None, auth: RegistryAuth | None) -> str | None:
        """Why the pull failed; None when it did not."""
        try:
            for chunk in self.client.pull(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=auth.as_auth_config() if auth else None,
            ):
                reason = _failure_reason(chunk, "pull failed")
                if reason is not None:
                    return reason
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            return str(exc)
        return None

    def prune(
        self,
        label: str,
        budget_bytes: int,
        min_age_seconds: int,
        unlabelled: Collection[str] = (),
    ) -> list[str]:
        """Remove stopped containers and dangling layers; then images carrying `label`, or
        tagged in one of the `unlabelled` repositories (images built without hookbuild's
        labels), oldest first, until theirs fit in `budget_bytes`. Returns what was removed.

        Nothing younger than `min_age_seconds` is touched: a build running beside this one
        on the same engine keeps its intermediate containers and (dangling) layers."""
        removed: list[str] = []
        until = {"until": f"{min_age_seconds}s"} if min_age_seconds else {}
        try:
            self.client.prune_containers(filters=until)
            self.client.prune_images(filters={"dangling": True, **until})
            # BuildKit keeps its cache outside the image store: held to the budget too.
            if self.has_buildkit:
                self.client.prune_builds(filters=until or None, keep_storage=budget_bytes)
            images = [
                image
                for image in self.client.images()
                if label in (image.get("Labels") or {}) or _in_repositories(image, unlabelled)
            ]
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise self._error(exc, "pruning") from exc
        used = sum(int(i.get("Size", 0)) for i in images)
        youngest = time.time() - min_age_seconds
        for image in sorted(images, key=lambda i: int(i.get("Created", 0))):
            if used <= budget_bytes or int(image.get("Created", 0)) > youngest:
                break
            try:
                self.client.remove_image(image["Id"], force=True)
            except docker.errors.APIError:
                continue  # in use by a running build: its turn comes next time
            used -= int(image.get("Size", 0))
            removed.append(str(image["Id"]))
        return removed


def _in_repositories(image: Mapping[str, Any], repositories: Collection[str]) -> bool:
    """Is one of the image's tags (`repository:tag`) in one of `repositories`?"""
    return any(tag.rpartition(":")[0] in repositories for tag in image.get("RepoTags") or ())
