"""Tag and push a built image, each tag by its kind (builder.tagkinds):

- pinned tags are always pushed;
- release tags refuse to point at another image unless the rule allows `overwrite`;
- moving tags move forward only, under a per-tag lock, so that two builds finishing in the
  wrong order never leave `latest` on the older commit.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from typing import Protocol

from builder.engine import DockerEngine, RegistryAuth
from builder.errors import HookbuildError
from builder.plan import BuildPlan
from builder.registry import RegistryTagger, RetagFailed
from builder.tagkinds import TagKind
from builder.tagorder import Ancestry, TagHolder, is_newer

LogSink = Callable[[str], None]


class TagLedger(Protocol):
    """Where each image tag points, as hookbuild pushed it; shared by all workers."""

    def current(self, image: str, tag: str) -> TagHolder | None: ...

    def hold(self, image: str, tag: str) -> AbstractContextManager[None]:
        """Exclusive use of one tag while deciding and pushing it."""
        ...

    def record(self, image: str, tag: str, holder: TagHolder) -> None: ...


class ReleaseTagTaken(HookbuildError):
    """A release tag already points at another image and the rule does not allow overwrite."""


class Retrying(Protocol):
    def __call__(self, action: Callable[[], str], what: str, say: LogSink) -> str: ...


def _once(action: Callable[[], str], what: str, say: LogSink) -> str:
    return action()


class Publisher:
    def __init__(
        self,
        engine: DockerEngine,
        ledger: TagLedger | None,
        is_ancestor: Ancestry,
        retrying: Retrying = _once,
        tagger: RegistryTagger | None = None,
    ) -> None:
        """`tagger`: tags the image inside its registry once a push has put it there;
        None pushes every tag through the engine."""
        self.engine = engine
        self.ledger = ledger
        self.is_ancestor = is_ancestor
        self.retrying = retrying
        self.tagger = tagger

    def check_releases(self, plan: BuildPlan, tags: tuple[str, ...], image_id: str) -> None:
        """Refuse before anything is pushed, so a refused build changes nothing."""
        if self.ledger is None:
            return
        for tag in tags:
            if plan.kind_of(tag) == TagKind.RELEASE:
                self._check_release(plan, tag, image_id)

    def _check_release(self, plan: BuildPlan, tag: str, image_id: str) -> None:
        assert self.ledger is not None
        holder = self.ledger.current(plan.image, tag)
        if holder and holder.image_id != image_id and tag not in plan.overwrite:
            raise ReleaseTagTaken(
                f"{plan.image}:{tag} already points at {holder.digest} (commit {holder.sha[:7]}, "
                f"build {holder.build_id}); refusing to replace a release tag with another image. "
                "Set `overwrite: true` on the rule to allow it."
            )

    def publish(
        self,
        plan: BuildPlan,
        tags: tuple[str, ...],
        me: TagHolder,
        auth: RegistryAuth | None,
        say: LogSink,
    ) -> dict[str, str]:
        """Push every tag that may move here; return `image:tag -> digest` of those pushed.

        Tags go one after another until a push has put the layers in the registry, its
        lines streaming as they come. The other tags then only add a manifest each: they go
        at once, each put in the registry under its tag (builder.registry) or, where that
        does not work, pushed by the engine; their lines follow whole, in order. Not all at
        once from the start: two pushes uploading the same blob make the Distribution
        registry's filesystem storage answer 500 (seen in the tests)."""
        digests: dict[str, str | None] = {}
        pending = list(tags)
        while pending and not any(digests.values()):
            tag = pending.pop(0)
            digests[tag] = self._publish_one(plan, tag, me, auth, say, None)
        uploaded = next((digest for digest in digests.values() if digest), None)
        if pending:
            later_lines: dict[str, list[str]] = {tag: [] for tag in pending}
            with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="push") as pool:
                futures = {
                    tag: pool.submit(
                        self._publish_one, plan, tag, me, auth, later_lines[tag].append, uploaded
                    )
                    for tag in pending
                }
                wait(futures.values())  # every push ends before the build does, failed or not
            for lines in later_lines.values():
                for line in lines:
                    say(line)
            for future in futures.values():
                error = future.exception()
                if error is not None:
                    raise error
            digests.update((tag, future.result()) for tag, future in futures.items())
        return {f"{plan.image}:{tag}": digest for tag in tags if (digest := digests.get(tag))}

    def _publish_one(
        self,
        plan: BuildPlan,
        tag: str,
        me: TagHolder,
        auth: RegistryAuth | None,
        say: LogSink,
        uploaded: str | None,
    ) -> str | None:
        """Tag and push one tag, if its kind lets it move here; its digest, or None.
        `uploaded`: the digest of this image already in the registry, if one is."""
        self.engine.tag(me.image_id, plan.image, tag)
        kind = plan.kind_of(tag)
        if self.ledger is None or kind == TagKind.PINNED:
            return self._push(plan, tag, auth, say, uploaded)
        with self.ledger.hold(plan.image, tag):
            holder = self.ledger.current(plan.image, tag)
            if kind == TagKind.RELEASE:
                self._check_release(plan, tag, me.image_id)
            elif holder is not None and not is_newer(me, holder, self.is_ancestor):
                say(
                    f"==> leaving {plan.image}:{tag} where it is: it points at a newer "
                    f"commit ({holder.sha[:7]}, build {holder.build_id}); "
                    "tags only move forward"
                )
                return None
            digest = self._push(plan, tag, auth, say, uploaded)
            self.ledger.record(plan.image, tag, _with_digest(me, digest))
            return digest

    def _push(
        self,
        plan: BuildPlan,
        tag: str,
        auth: RegistryAuth | None,
        say: LogSink,
        uploaded: str | None,
    ) -> str:
        say(f"==> pushing {plan.image}:{tag}")
        digest = None
        if uploaded is not None and self.tagger is not None:
            try:
                digest = self.tagger.tag(uploaded, tag)
                say(f"{tag}: manifest {uploaded} put under this tag; its layers are there")
            except RetagFailed as exc:
                say(f"{tag}: not tagged in the registry ({exc}); pushing through the engine")
        if digest is None:
            digest = self.retrying(
                lambda: self.engine.push(plan.image, tag, auth, say),
                f"pushing {plan.image}:{tag}",
                say,
            )
        say(f"==> pushed {plan.image}:{tag} {digest}")
        return digest


def _with_digest(holder: TagHolder, digest: str) -> TagHolder:
    return TagHolder(
        sha=holder.sha,
        committed_at=holder.committed_at,
        version=holder.version,
        image_id=holder.image_id,
        digest=digest,
        build_id=holder.build_id,
    )
