"""One build, start to end: fetch the pushed commit, build once, tag every tag, push each.

The pipeline owns no queue and no records: it reports through a line sink and returns a
`BuildResult` or raises a `HookbuildError`. Nothing is pushed unless the build succeeded.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from builder.config import Config
from builder.engine import DockerEngine, RegistryAuth
from builder.paths import resolve_build_paths
from builder.plan import BuildPlan
from builder.redact import redact
from builder.source import MirrorCache

LogSink = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    digest: str
    tags: tuple[str, ...]
    digests: dict[str, str] = field(default_factory=dict)  # image:tag -> digest


def oci_labels(plan: BuildPlan, created: datetime) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.source": redact(plan.clone_url),
        "org.opencontainers.image.revision": plan.sha,
        "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.ref.name": plan.ref_name,
        "org.opencontainers.image.title": plan.repository,
    }
    if plan.ref.startswith("refs/tags/"):
        labels["org.opencontainers.image.version"] = plan.ref_name
    return labels


class Pipeline:
    def __init__(
        self, config: Config, engine: DockerEngine, mirrors: MirrorCache, workdir: Path
    ) -> None:
        self.config = config
        self.engine = engine
        self.mirrors = mirrors
        self.workdir = workdir

    def run(self, plan: BuildPlan, log: LogSink) -> BuildResult:
        repository = self.config.repository(plan.forge, plan.repository)
        credentials = repository.clone_credentials if repository else None
        secrets = tuple(s for s in (credentials[1] if credentials else None,) if s)

        def say(line: str) -> None:
            log(redact(line, secrets))

        for note in plan.notes:
            say(f"==> note: {note}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        checkout = Path(tempfile.mkdtemp(prefix="build-", dir=self.workdir))
        try:
            say(f"==> fetching {redact(plan.clone_url)} at {plan.sha} ({plan.ref})")
            commit = self.mirrors.export(
                plan.clone_url, plan.ref, plan.sha, checkout, credentials, say
            )
            paths = resolve_build_paths(checkout, plan.context, plan.dockerfile)
            first = f"{plan.image}:{plan.tags[0]}"
            say(f"==> building {plan.dockerfile} in context {plan.context}")
            image_id = self.engine.build(
                paths.context,
                paths.dockerfile,
                tag=first,
                build_args=plan.build_args,
                # The commit's date, not the build's: a rebuild of a commit reuses its layers.
                labels=oci_labels(plan, commit.committed_at),
                on_line=say,
            )
            say(f"==> built {image_id}")
            digests = {}
            auth = self._registry_auth(plan.image)
            for tag in plan.tags:
                self.engine.tag(image_id, plan.image, tag)
            for tag in plan.tags:
                say(f"==> pushing {plan.image}:{tag}")
                digests[f"{plan.image}:{tag}"] = self.engine.push(plan.image, tag, auth, say)
                say(f"==> pushed {plan.image}:{tag} {digests[f'{plan.image}:{tag}']}")
            digest = next(iter(digests.values()))
            return BuildResult(image_id, digest, plan.tags, digests)
        finally:
            shutil.rmtree(checkout, ignore_errors=True)

    def _registry_auth(self, image: str) -> RegistryAuth | None:
        registry = self.config.registry_for(image)
        if registry is None or not registry.has_credentials:
            return None
        return RegistryAuth(registry.username or "", registry.password or "")
