"""One build, start to end: fetch the pushed commit, build once, push every tag it may.

The pipeline owns no queue and no records: it reports through a line sink and returns a
`BuildResult` (built, or skipped by a path filter) or raises a `HookbuildError`. Nothing
is pushed unless the build succeeded and no release tag refuses it.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from builder import secretargs
from builder.baseimages import base_images, frontend_image
from builder.build.buildstep import BuildStep, choose_step
from builder.build.engine import BuildEngine, BuildRequest, RegistryAuth
from builder.build.publish import Publisher, TagLedger
from builder.build.registry import RegistryTagger
from builder.build.retry import with_retries
from builder.build.source import CommitInfo, MirrorCache
from builder.build.streamcontext import stream_context
from builder.buildnetwork import no_network_reason
from builder.config import Config
from builder.errors import HookbuildError, RetagFailed, SourceError
from builder.logsink import LineSink
from builder.paths_filter import path_filter_reason
from builder.plan import BuildPlan
from builder.redact import redact
from builder.refs import ref_problem
from builder.stepcount import StepCounter
from builder.tags.final import final_tags_made_valid
from builder.tags.order import TagHolder

T = TypeVar("T")
IMAGE_LABEL = "dev.hookbuild.repository"


@dataclass(frozen=True)
class BuildResult:
    tags: tuple[str, ...]  # the final tags (with `{date}` filled in)
    image_id: str = ""
    digest: str = ""
    digests: dict[str, str] = field(default_factory=dict)  # image:tag -> digest, as pushed
    skipped: str | None = None  # why nothing was built (path filters)


def oci_labels(plan: BuildPlan, commit: CommitInfo) -> dict[str, str]:
    """The image's labels: hookbuild's own, unless the config turns them off, and `labels:`."""
    if not plan.oci_labels:
        return dict(plan.labels)
    labels = {
        "org.opencontainers.image.source": redact(plan.clone_url),
        "org.opencontainers.image.revision": plan.sha,
        # The commit's date, not the build's: a rebuild of a commit reuses its layers.
        "org.opencontainers.image.created": commit.committed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.ref.name": plan.ref_name,
        "org.opencontainers.image.title": plan.image.rsplit("/", 1)[-1],
        IMAGE_LABEL: plan.repository,  # what the disk budget may prune
    }
    if plan.version or plan.ref.startswith("refs/tags/"):
        labels["org.opencontainers.image.version"] = plan.version or plan.ref_name
    return labels | dict(plan.labels)


@dataclass
class _Run:
    """One run of the pipeline: the plan (with the hidden build args, this worker's copy
    only), what it says to the log (with secrets masked), and its scratch directory."""

    plan: BuildPlan
    say: LineSink
    credentials: tuple[str, str] | None
    secrets: tuple[str, ...]
    scratch: Path
    tags: tuple[str, ...] = ()
    sanitised: frozenset[str] = frozenset()
    dockerfile: str = ""  # its text, where read (see _read_dockerfile_and_choose_step)
    frontend: str | None = None  # the image its `# syntax=` line names
    auth: RegistryAuth | None = None  # for the plan's image's registry


class Pipeline:
    def __init__(
        self,
        config: Config,
        engine: BuildEngine,
        mirrors: MirrorCache,
        workdir: Path,
        ledger: TagLedger | None = None,
        build_id: str = "",
    ) -> None:
        self.config = config
        self.engine = engine
        self.root_mirrors = mirrors
        self.mirrors = mirrors  # the plan's repository's own, once `run` starts
        self.workdir = workdir
        self.ledger = ledger
        self.build_id = build_id

    def run(self, plan: BuildPlan, log: LineSink) -> BuildResult:
        run = self._start(plan, log)
        try:
            commit = self._fetch(run)
            self._final_tags(run, commit)
            if skipped := self._path_filter(run):
                run.say(f"==> skipped: {skipped}")
                return BuildResult(run.tags, skipped=skipped)
            step = self._read_dockerfile_and_choose_step(run)
            image_id = self._build(run, step, commit)
            return self._publish(run, commit, image_id)
        except HookbuildError as exc:
            secretargs.mask_error(exc, run.secrets)  # its message goes to the record and logs
            raise
        finally:
            shutil.rmtree(run.scratch, ignore_errors=True)

    def _start(self, plan: BuildPlan, log: LineSink) -> _Run:
        """Refuse what must not reach git; gather the credentials and hidden build args."""
        # Checked here too, not only at intake: a plan stored before a URL was refused
        # (or rebuilt after the config changed) must not reach git either.
        refused = self.config.clone_url_problem(
            plan.forge, plan.repository, plan.clone_url
        ) or ref_problem(plan.ref)
        if refused:
            raise SourceError(f"not fetching: {refused}")
        self.mirrors = self.root_mirrors.for_repository(plan.forge, plan.repository)
        credentials = self.config.clone_credentials(plan.forge, plan.repository)
        hidden = secretargs.for_plan(self.config, plan.forge, plan.repository, plan.image)
        # Only this worker's copy of the plan holds them; the queued and recorded one never.
        plan = replace(plan, build_args={**plan.build_args, **hidden}) if hidden else plan
        token = credentials[1] if credentials else None
        secrets = tuple(s for s in (token, *hidden.values()) if s)

        def say(line: str) -> None:
            log(redact(line, secrets))

        for note in plan.notes:
            say(f"==> note: {note}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Outside the checkout.
        scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.workdir))
        return _Run(plan, say, credentials, secrets, scratch)

    def _fetch(self, run: _Run) -> CommitInfo:
        plan, say = run.plan, run.say
        say(f"==> fetching {redact(plan.clone_url)} at {plan.sha} ({plan.ref})")
        clock = time.monotonic()
        commit = self._retrying(
            lambda: self.mirrors.fetch(plan.clone_url, plan.ref, plan.sha, run.credentials, say),
            "fetching",
            say,
        )
        say(f"==> fetched in {time.monotonic() - clock:.2f}s")
        return commit

    def _final_tags(self, run: _Run, commit: CommitInfo) -> None:
        run.tags, run.sanitised = final_tags_made_valid(
            run.plan.tags, commit.committed_at, run.say, run.plan.sanitised
        )

    def _read_dockerfile_and_choose_step(self, run: _Run) -> BuildStep:
        """BuildKit or the classic builder: `auto` reads the Dockerfile for a frontend, and
        base images in a registry with credentials are pulled (see _pull_base_images)."""
        plan = run.plan
        credentials_for_bases = any(r.has_credentials for r in self.config.registries)
        if plan.builder != "classic" or credentials_for_bases:
            run.dockerfile = self._dockerfile_text(plan)
        run.frontend = frontend_image(run.dockerfile, plan.build_args)
        step, why = choose_step(plan.builder, self.engine.has_buildkit, run.frontend)
        if why:
            run.say(f"==> builder: classic, since {why}")
        return step

    def _build(self, run: _Run, step: BuildStep, commit: CommitInfo) -> str:
        """The context, the build cache, the base images, then the build itself."""
        plan, say = run.plan, run.say
        labels = oci_labels(plan, commit)
        context, dockerfile, left = self._context(
            plan, run.scratch, step.labels_for_dockerfile(labels), say
        )
        run.auth = self._registry_auth(plan.image)
        cache_from = self._registry_cache(plan, run.tags, run.auth, say)
        self._pull_base_images(run, step)
        if why_none := no_network_reason(plan.network, self.engine.has_bridge):
            say(f"==> no network for RUN steps: {why_none}")
        say(f"==> building {plan.dockerfile} in context {plan.context}{step.describe}")
        clock = time.monotonic()
        steps = StepCounter(say)
        request = BuildRequest(
            context,
            dockerfile,
            tag=f"{plan.image}:{run.tags[0]}",
            build_args=plan.build_args,
            labels=step.labels_for_build(labels, left),
            target=plan.target,
            cache_from=tuple(cache_from),
            scratch=run.scratch,
            network=plan.network,
        )
        image_id = step.build(self.engine, request, steps)
        say(
            f"==> built {image_id} in {time.monotonic() - clock:.2f}s; "
            f"{steps.cached} of {steps.steps} steps from the cache"
        )
        return image_id

    def _publish(self, run: _Run, commit: CommitInfo, image_id: str) -> BuildResult:
        """Tag and push every tag the build may have (builder/build/publish.py)."""
        plan, say = run.plan, run.say
        clock = time.monotonic()
        publisher = Publisher(
            self.engine,
            self.ledger,
            self._ancestry(plan.clone_url),
            self._retrying,
            self._registry_tagger(plan.image, run.auth),
        )
        publisher.check_releases(plan, run.tags, image_id, run.sanitised)
        me = TagHolder(
            sha=plan.sha,
            committed_at=commit.committed_at.timestamp(),
            version=plan.version,
            image_id=image_id,
            build_id=self.build_id,
        )
        digests = publisher.publish(plan, run.tags, me, run.auth, say, run.sanitised)
        digest = next(iter(digests.values()), "")
        say(f"==> pushed {len(digests)} tag(s) in {time.monotonic() - clock:.2f}s")
        return BuildResult(run.tags, image_id, digest, digests)

    def _context(
        self,
        plan: BuildPlan,
        scratch: Path,
        labels: Mapping[str, str],
        say: LineSink,
    ) -> tuple[Path, Path | str, Mapping[str, str]]:
        """The build context: a tar made from the mirror's objects alone, never from a
        checkout on disk, where a repository's symlink could reach the worker's files
        (builder/build/streamcontext.py)."""
        clock = time.monotonic()
        streamed = stream_context(
            self.mirrors,
            plan.clone_url,
            plan.sha,
            plan.context,
            plan.dockerfile,
            labels,
            plan.target,
            scratch,
        )
        how = ", repacked," if streamed.repacked else ""
        say(f"==> context from the mirror as a tar{how} in {time.monotonic() - clock:.2f}s")
        return streamed.tar, streamed.dockerfile, streamed.labels

    def _registry_cache(
        self, plan: BuildPlan, tags: tuple[str, ...], auth: RegistryAuth | None, say: LineSink
    ) -> list[str]:
        """On an engine with no image of this repository yet (a new worker, a pruned one),
        the last pushed image of the same moving tag is the build cache."""
        if self.engine.has_image_of(plan.image):
            return []
        moving = [t for t in tags if plan.kind_of(t) == "moving"] or list(tags)
        reference = f"{plan.image}:{moving[0]}"
        if self.engine.pull(plan.image, moving[0], auth):
            say(f"==> no local build cache for {plan.image}: using {reference} from the registry")
            return [reference]
        say(f"==> no local build cache for {plan.image}, and {reference} is not in the registry")
        return []

    def _dockerfile_text(self, plan: BuildPlan) -> str:
        """The Dockerfile, from the mirror (bounded, symlinks followed inside the commit
        only); empty when it is not there, which the context step then reports."""
        try:
            text = self.mirrors.read_file(plan.clone_url, plan.sha, plan.dockerfile)
        except SourceError:
            return ""
        return text.decode("utf-8", "replace")

    def _pull_base_images(self, run: _Run, step: BuildStep) -> None:
        """Pull the Dockerfile's base images (builder/baseimages.py), and the `frontend`
        image if it names one, that the engine lacks, with the config's credentials for
        their registry: each one for BuildKit, which without a client session pulls
        nothing itself; for the classic builder, those in a registry the config has
        credentials for (it pulls the others itself, as `docker build` does, but knows
        nothing of the config)."""
        plan, say = run.plan, run.say
        frontend = step.frontend_to_pull(run.frontend)
        images = base_images(run.dockerfile, plan.build_args, plan.target)
        for image, what in [(frontend, "frontend"), *((i, "base") for i in images)]:
            if image is None:
                continue
            auth = self._registry_auth(image)
            if not step.must_pull(auth is not None) or self.engine.has_image(image):
                continue
            say(f"==> pulling the {what} image {image}")
            pull = functools.partial(self.engine.pull_image, image, auth)
            self._retrying(pull, f"pulling {image}", say)

    def _path_filter(self, run: _Run) -> str | None:
        """Why the plan's path filters skip this push; None when they do not."""
        plan, say = run.plan, run.say
        if not plan.paths and not plan.ignore_paths:
            return None
        changed = self.mirrors.changed_files(
            plan.clone_url, plan.before, plan.sha, plan.default_branch, run.credentials
        )
        if changed is None:
            say("==> path filters: no earlier commit to compare with; building")
            return None
        shown = ", ".join(changed[:20]) + (
            f" and {len(changed) - 20} more" if len(changed) > 20 else ""
        )
        say(f"==> changed files: {shown or '(none)'}")
        return path_filter_reason(changed, plan.paths, plan.ignore_paths)

    def _retrying(self, action: Callable[[], T], what: str, say: LineSink) -> T:
        retries = self.config.retries
        return with_retries(action, what, retries.transient, retries.backoff_seconds, say)

    def _ancestry(self, clone_url: str) -> Callable[[str, str], bool | None]:
        return lambda a, b: self.mirrors.is_ancestor(clone_url, a, b)

    def _registry_tagger(self, image: str, auth: RegistryAuth | None) -> RegistryTagger | None:
        registry = self.config.registry_for(image)
        try:
            return RegistryTagger(image, auth, registry.insecure if registry else None)
        except RetagFailed:
            return None  # no registry host in the name: every tag goes through the engine

    def _registry_auth(self, image: str) -> RegistryAuth | None:
        registry = self.config.registry_for(image)
        if registry is None or not registry.has_credentials:
            return None
        return RegistryAuth(registry.username or "", registry.password or "")
