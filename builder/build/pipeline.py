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
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from builder import secretargs
from builder.baseimages import base_images, frontend_image
from builder.build.docker.engine import DockerEngine, RegistryAuth
from builder.build.publish import Publisher, TagLedger
from builder.build.registry import RegistryTagger, RetagFailed
from builder.build.retry import with_retries
from builder.build.source import CommitInfo, MirrorCache
from builder.build.streamcontext import stream_context
from builder.builderchoice import choose_builder
from builder.buildnetwork import no_network_reason
from builder.config import Config
from builder.errors import HookbuildError, SourceError
from builder.logpatterns import BUILDKIT_CACHED, BUILDKIT_CLIPPED, BUILDKIT_STEP
from builder.logsink import LineSink
from builder.paths_filter import path_filter_reason
from builder.plan import BuildPlan
from builder.redact import redact
from builder.refs import ref_problem
from builder.tags.order import TagHolder
from builder.tags.templates import fill_dates, has_deferred_date, is_valid_tag, to_docker_tag

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


CLIPPED_NOTE = (
    "==> note: the engine's BuildKit left out part of this step's output. Start dockerd "
    "with BUILDKIT_STEP_LOG_MAX_SIZE and BUILDKIT_STEP_LOG_MAX_SPEED set high (bytes, and "
    "bytes a second; scripts/up sets 1073741824) to keep every line, or build with "
    "`builder: classic`"
)


class _StepCounter:
    """Passes build output on, counting steps and the ones the engine took from its cache:
    the classic builder's "Step 2/3 : ..." and "---> Using cache", or BuildKit's
    "#6 [2/3] ..." and "#6 CACHED" (builder/build/docker/buildkit.py). Where BuildKit
    clipped a step's output, it says once how to keep all of it."""

    def __init__(self, say: LineSink) -> None:
        self.say = say
        self.steps = 0
        self.cached = 0
        self._buildkit_steps: set[str] = set()
        self._clipped = False

    def __call__(self, line: str) -> None:
        if line.startswith("Step "):
            self.steps += 1
        elif line.strip() == "---> Using cache":
            self.cached += 1
        elif line.startswith("#"):
            if step := BUILDKIT_STEP.match(line):
                self.steps += 1
                self._buildkit_steps.add(step[1])
            elif (hit := BUILDKIT_CACHED.match(line)) and hit[1] in self._buildkit_steps:
                self.cached += 1
        self.say(line)
        if not self._clipped and BUILDKIT_CLIPPED.match(line):
            self._clipped = True
            self.say(CLIPPED_NOTE)


def final_tags(tags: tuple[str, ...], committed_at: datetime, say: LineSink) -> tuple[str, ...]:
    """Fill `{date...}` with the commit's date, and make each result a valid tag."""
    return _final_tags(tags, committed_at, say)[0]


def _final_tags(
    tags: tuple[str, ...], committed_at: datetime, say: LineSink, sanitised: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], frozenset[str]]:
    """`final_tags`, and which of them were made valid (those of `sanitised`, and dated
    tags that were not valid once filled in): builder.tags.owners."""
    done: list[str] = []
    made_valid = set(sanitised)
    for tag in tags:
        if has_deferred_date(tag):
            filled = fill_dates(tag, committed_at)
            tag = filled if is_valid_tag(filled) else to_docker_tag(filled)
            if not tag:
                say(f"==> note: tag {filled!r} has no valid tag in it: skipped")
                continue
            if tag != filled:
                made_valid.add(tag)
        if tag not in done:
            done.append(tag)
    return tuple(done), frozenset(made_valid)


class Pipeline:
    def __init__(
        self,
        config: Config,
        engine: DockerEngine,
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
        scratch = Path(
            tempfile.mkdtemp(prefix="scratch-", dir=self.workdir)
        )  # outside the checkout
        try:
            say(f"==> fetching {redact(plan.clone_url)} at {plan.sha} ({plan.ref})")
            clock = time.monotonic()
            commit = self._retrying(
                lambda: self.mirrors.fetch(plan.clone_url, plan.ref, plan.sha, credentials, say),
                "fetching",
                say,
            )
            say(f"==> fetched in {time.monotonic() - clock:.2f}s")
            tags, sanitised = _final_tags(plan.tags, commit.committed_at, say, plan.sanitised)
            skipped = self._path_filter(plan, credentials, say)
            if skipped:
                say(f"==> skipped: {skipped}")
                return BuildResult(tags, skipped=skipped)
            # Read for `auto` and for the base images to pull (see _pull_base_images).
            credentials_for_bases = any(r.has_credentials for r in self.config.registries)
            reads = plan.builder != "classic" or credentials_for_bases
            text = self._dockerfile_text(plan) if reads else ""
            frontend = frontend_image(text, plan.build_args)
            builder, why = choose_builder(plan.builder, self.engine.has_buildkit, frontend)
            if why:
                say(f"==> builder: classic, since {why}")
            # BuildKit sets build labels as it writes the image; the classic builder needs
            # them in the Dockerfile to spend one step on them, not one each.
            buildkit = builder == "buildkit"
            labels = oci_labels(plan, commit)
            context, dockerfile, step_labels = self._context(
                plan, scratch, {} if buildkit else labels, say
            )
            auth = self._registry_auth(plan.image)
            cache_from = self._registry_cache(plan, tags, auth, say)
            self._pull_base_images(plan, text, frontend if buildkit else None, buildkit, say)
            if why_none := no_network_reason(plan.network, self.engine.has_bridge):
                say(f"==> no network for RUN steps: {why_none}")
            with_what = " with BuildKit" if buildkit else ""
            say(f"==> building {plan.dockerfile} in context {plan.context}{with_what}")
            clock = time.monotonic()
            steps = _StepCounter(say)
            image_id = self.engine.build(
                context,
                dockerfile,
                tag=f"{plan.image}:{tags[0]}",
                build_args=plan.build_args,
                labels=labels if buildkit else step_labels,
                target=plan.target,
                on_line=steps,
                cache_from=cache_from,
                scratch=scratch,
                buildkit=buildkit,
                network=plan.network,
            )
            say(
                f"==> built {image_id} in {time.monotonic() - clock:.2f}s; "
                f"{steps.cached} of {steps.steps} steps from the cache"
            )
            clock = time.monotonic()
            publisher = Publisher(
                self.engine,
                self.ledger,
                self._ancestry(plan.clone_url),
                self._retrying,
                self._registry_tagger(plan.image, auth),
            )
            publisher.check_releases(plan, tags, image_id, sanitised)
            me = TagHolder(
                sha=plan.sha,
                committed_at=commit.committed_at.timestamp(),
                version=plan.version,
                image_id=image_id,
                build_id=self.build_id,
            )
            digests = publisher.publish(plan, tags, me, auth, say, sanitised)
            digest = next(iter(digests.values()), "")
            say(f"==> pushed {len(digests)} tag(s) in {time.monotonic() - clock:.2f}s")
            return BuildResult(tags, image_id, digest, digests)
        except HookbuildError as exc:
            secretargs.mask_error(exc, secrets)  # its message goes to the record and logs
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

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

    def _pull_base_images(
        self, plan: BuildPlan, dockerfile: str, frontend: str | None, buildkit: bool, say: LineSink
    ) -> None:
        """Pull the Dockerfile's base images (builder/baseimages.py), and the `frontend`
        image if it names one, that the engine lacks, with the config's credentials for
        their registry: each one for BuildKit, which without a client session pulls
        nothing itself; for the classic builder, those in a registry the config has
        credentials for (it pulls the others itself, as `docker build` does, but knows
        nothing of the config)."""
        images = base_images(dockerfile, plan.build_args, plan.target)
        for image, what in [(frontend, "frontend"), *((i, "base") for i in images)]:
            if image is None:
                continue
            auth = self._registry_auth(image)
            if (auth is None and not buildkit) or self.engine.has_image(image):
                continue
            say(f"==> pulling the {what} image {image}")
            pull = functools.partial(self.engine.pull_image, image, auth)
            self._retrying(pull, f"pulling {image}", say)

    def _path_filter(
        self, plan: BuildPlan, credentials: tuple[str, str] | None, say: LineSink
    ) -> str | None:
        if not plan.paths and not plan.ignore_paths:
            return None
        changed = self.mirrors.changed_files(
            plan.clone_url, plan.before, plan.sha, plan.default_branch, credentials
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
