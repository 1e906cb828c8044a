"""The Docker engine, through docker-py's low-level API: build, tag and push, streamed.

`APIClient.build(..., decode=True)` yields each step's output as the engine prints it (the
high-level `images.build()` would hold the whole log back until the end). Errors come inside
the stream, for builds and pushes alike, so every chunk is read. docker-py's and requests'
errors become ours in builder/build/docker/errors.py only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.constants
import docker.errors

from builder.build.docker import buildkit_api
from builder.build.docker.context import context_body
from builder.build.docker.errors import (
    ENGINE_ERRORS,
    STREAM_ERRORS,
    translate,
    translated,
    translated_push,
    words_of,
)
from builder.build.docker.labels import labels_in_one_step
from builder.build.docker.output import BuildOutput, failure_reason
from builder.build.engine import BuildRequest, RegistryAuth
from builder.engineaddress import engine_address, unreachable_reason
from builder.errors import RegistryError, engine_gone
from builder.logsink import DEFAULT_MAX_LINE_CHARS, LineSink

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


def _registry_error(doing: str, reason: str) -> RegistryError:
    transient = any(word in reason.lower() for word in _TRANSIENT_WORDS)
    return RegistryError(f"{doing}: {reason}", transient=transient)


class DockerEngine:
    """A `builder.build.engine.BuildEngine` on a Docker engine."""

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
        with translated("connecting to the Docker engine", address, bare_when_unreachable=True):
            kwargs = docker.utils.kwargs_from_env(environment=dict(environ))
            version, os_type = _ping_engine(kwargs, timeout)
            client = docker.APIClient(timeout=timeout, version=version, **kwargs)
            return cls(client, os_type, max_line, address)

    @property
    def has_buildkit(self) -> bool:
        """Can this engine build with BuildKit as hookbuild asks it to (no client session)?
        Linux engines can, from API 1.39 (Docker 18.09) on."""
        if docker.utils.version_lt(self.client.api_version, "1.39"):
            return False
        if self._os_type is None:
            with translated("asking the Docker engine its version", self.address):
                self._os_type = str(self.client.version().get("Os") or "linux")
        return self._os_type == "linux"

    @property
    def has_bridge(self) -> bool:
        """Has the engine its `bridge` network, the one builds get by default? Not when
        dockerd was started with --bridge=none."""
        if self._has_bridge is None:
            with translated("listing the Docker engine's networks", self.address):
                bridges = self.client.networks(names=["bridge"])
            self._has_bridge = any(n.get("Name") == "bridge" for n in bridges)
        return self._has_bridge

    def close(self) -> None:
        self.client.close()

    def ping(self) -> None:
        with translated("pinging the Docker engine", self.address):
            self.client.ping()

    def describe(self) -> str:
        try:
            version = str(self.client.version().get("Version") or "unknown")
        except ENGINE_ERRORS:
            version = "unknown"  # it answered the ping: what it is matters less
        return f"Docker {version}, API {self.client.api_version}"

    def build_classic(self, request: BuildRequest, on_line: LineSink) -> str:
        """Build with the classic builder; return the image id, or raise `BuildFailed` with
        the failing step's output. Labels go into a copy of the Dockerfile in `scratch`,
        one step for all (builder/build/docker/labels.py)."""
        dockerfile, labels = request.dockerfile, request.labels
        from_tar = request.context.is_file()
        if request.scratch is not None and not from_tar:
            dockerfile, labels = labels_in_one_step(
                Path(dockerfile), labels, request.target, request.scratch
            )
        output = BuildOutput(on_line, buildkit=False, max_line=self.max_line)
        tar = open(request.context, "rb") if from_tar else None  # noqa: SIM115 - closed below
        source: dict[str, Any] = (
            {"fileobj": tar, "custom_context": True} if tar else {"path": str(request.context)}
        )
        try:
            output.read(
                self.client.build(
                    **source,
                    dockerfile=str(dockerfile),
                    tag=request.tag,
                    buildargs=dict(request.build_args),
                    labels=dict(labels),
                    cache_from=list(request.cache_from) or None,
                    target=request.target,
                    network_mode="none" if request.network == "none" else None,
                    rm=True,
                    forcerm=True,  # no stopped container is left behind by a failed step
                    pull=False,
                    decode=True,
                )
            )
        except STREAM_ERRORS as exc:
            output.flush()
            raise self._build_error(exc, "docker build") from exc
        finally:
            if tar is not None:
                tar.close()
        return self._built(output, request.tag, "docker build")

    def build_buildkit(self, request: BuildRequest, on_line: LineSink) -> str:
        """Build with BuildKit, which sets the labels as it writes the image, without a
        step of their own; return the image id, or raise `BuildFailed`."""
        output = BuildOutput(on_line, buildkit=True, max_line=self.max_line)
        params: dict[str, str] = {
            "t": request.tag,
            # Inline cache metadata: the pushed image can then be another engine's cache_from.
            "buildargs": json.dumps({"BUILDKIT_INLINE_CACHE": "1", **request.build_args}),
            "labels": json.dumps(dict(request.labels)),
            "cachefrom": json.dumps(list(request.cache_from)),
        }
        if request.target:
            params["target"] = request.target
        action = "docker build (BuildKit)"
        try:
            # BuildKit runs RUN steps on the engine's `bridge` network by default; an engine
            # without one (--bridge=none) makes it fail where the classic builder falls back
            # to no network by itself: ask for `none` there too.
            if request.network == "none" or not self.has_bridge:
                params["networkmode"] = "none"
            with context_body(request.context, request.dockerfile) as (body, name):
                params["dockerfile"] = name
                output.read(buildkit_api.post_build(self.client, params, body))
        except STREAM_ERRORS as exc:
            output.flush()
            raise self._build_error(exc, action) from exc
        return self._built(output, request.tag, action)

    def _built(self, output: BuildOutput, tag: str, action: str) -> str:
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
        if why is not None:
            return engine_gone(action, why, self.address)
        return translate(exc, action, self.address)

    def _unreachable(self, patient: bool) -> str | None:
        """Why the engine does not answer a ping now; None when it does. `patient`: ask
        three times over a second, for an engine on its way out that still answers."""
        for attempt in range(3 if patient else 1):
            if attempt:
                time.sleep(0.5)
            try:
                # The client is a requests.Session: its own `get`, with a short timeout
                # (docker-py's `ping()` waits as long as a build may).
                response = self.client.get(f"{self.client.base_url}/_ping", timeout=PING_SECONDS)
                response.raise_for_status()
            except STREAM_ERRORS as exc:
                return unreachable_reason(exc) or str(exc)
        return None

    def _image_id(self, reference: str) -> str:
        with translated(f"inspecting {reference}", self.address):
            return str(self.client.inspect_image(reference)["Id"])

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        with translated(f"tagging {repository}:{tag}", self.address):
            self.client.tag(image_id, repository, tag, force=True)

    def push(self, repository: str, tag: str, auth: RegistryAuth | None, on_line: LineSink) -> str:
        """Push one tag; return the manifest digest the registry reported."""
        digest = ""
        with translated_push(f"pushing {repository}:{tag}", self.address):
            stream: Iterable[dict[str, Any]] = self.client.push(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=auth.as_auth_config() if auth else None,
            )
            failure = None
            for chunk in stream:  # to the end, even after an error (see build)
                reason = failure_reason(chunk, "push failed")
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
        if not digest:
            raise RegistryError(f"pushing {repository}:{tag}: the engine reported no digest")
        return digest

    def has_image_of(self, repository: str) -> bool:
        """Does the engine hold any image of this repository (any tag)?"""
        with translated(f"listing images of {repository}", self.address):
            return bool(self.client.images(name=repository, quiet=True))

    def has_image(self, reference: str) -> bool:
        with translated(f"inspecting {reference}", self.address):
            try:
                self.client.inspect_image(reference)
            except docker.errors.ImageNotFound:
                return False  # an answer, not a failure
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
                reason = failure_reason(chunk, "pull failed")
                if reason is not None:
                    return reason
        except ENGINE_ERRORS as exc:
            return words_of(exc)
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
        with translated("pruning", self.address):
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
