"""Tag and push a built image, each tag by its kind (builder.tags.kinds):

- pinned tags are always pushed;
- release tags refuse to point at another image unless the rule allows `overwrite`;
- moving tags move forward only, under a per-tag lock, so that two builds finishing in the
  wrong order never leave `latest` on the older commit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from builder.build.engine import BuildEngine, RegistryAuth
from builder.build.registry import RegistryTagger
from builder.errors import ReleaseTagTaken, RetagFailed
from builder.logsink import LineSink
from builder.plan import BuildPlan
from builder.tags.kinds import TagKind
from builder.tags.order import Ancestry, TagHolder, why_older
from builder.tags.owners import refusal, takes_over


class TagLedger(Protocol):
    """Where each image tag points, as hookbuild pushed it; shared by all workers."""

    def current(self, image: str, tag: str) -> TagHolder | None: ...

    def hold(self, image: str, tag: str) -> AbstractContextManager[None]:
        """Exclusive use of one tag while deciding and pushing it."""
        ...

    def record(self, image: str, tag: str, holder: TagHolder) -> None: ...


class Retrying(Protocol):
    def __call__(self, action: Callable[[], str], what: str, say: LineSink) -> str: ...


def _once(action: Callable[[], str], what: str, say: LineSink) -> str:
    return action()


class Publisher:
    def __init__(
        self,
        engine: BuildEngine,
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

    def check_releases(
        self,
        plan: BuildPlan,
        tags: tuple[str, ...],
        image_id: str,
        sanitised: frozenset[str] = frozenset(),
    ) -> None:
        """Refuse before anything is pushed, so a refused build changes nothing. A
        sanitised tag that belongs to another ref is left to `publish`, which skips it."""
        if self.ledger is None:
            return
        for tag in tags:
            if plan.kind_of(tag) == TagKind.RELEASE:
                holder = self.ledger.current(plan.image, tag)
                ours = tag in sanitised
                if refusal(tag, plan.ref, ours, holder) or takes_over(plan.ref, ours, holder):
                    continue
                self._check_release(plan, tag, image_id)

    def _check_release(self, plan: BuildPlan, tag: str, image_id: str) -> TagHolder | None:
        """Raise `ReleaseTagTaken` if release tag `tag` holds another commit's image. Return
        its holder if it holds another image of this same commit, which it keeps: a
        rebuild does not always make the same image (BuildKit's cache records, a pruned
        or another engine), and a release tag does not move unless the rule says so."""
        assert self.ledger is not None
        holder = self.ledger.current(plan.image, tag)
        if not holder or holder.image_id == image_id or tag in plan.overwrite:
            return None
        if holder.sha == plan.sha:
            return holder
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
        say: LineSink,
        sanitised: frozenset[str] = frozenset(),
    ) -> dict[str, str]:
        """Push every tag that may move here; return `image:tag -> digest` of those pushed.
        `sanitised`: the tags whose name was made valid (builder.tags.owners).

        Once a push has put the layers in the registry, each further tag is the same
        manifest under another name: hookbuild puts it there itself (builder.build.registry,
        ~12 ms here) or, where that does not work, the engine pushes it (35 to 70 ms).
        One tag after another: two writes of one manifest or one blob at once can make the
        Distribution registry's filesystem storage answer 500 (seen in the tests)."""
        digests: dict[str, str] = {}
        uploaded: str | None = None
        for tag in tags:
            digest = self._publish_one(plan, tag, me, auth, say, uploaded, tag in sanitised)
            if digest is not None:
                digests[f"{plan.image}:{tag}"] = digest
                uploaded = uploaded or digest
        return digests

    def _publish_one(
        self,
        plan: BuildPlan,
        tag: str,
        me: TagHolder,
        auth: RegistryAuth | None,
        say: LineSink,
        uploaded: str | None,
        sanitised: bool = False,
    ) -> str | None:
        """Tag and push one tag, if its kind and owner let it move here; its digest, or
        None. `uploaded`: the digest of this image already in the registry, if one is."""
        self.engine.tag(me.image_id, plan.image, tag)
        kind = plan.kind_of(tag)
        if self.ledger is None or kind == TagKind.PINNED:
            return self._push(plan, tag, auth, say, uploaded)
        with self.ledger.hold(plan.image, tag):
            holder = self.ledger.current(plan.image, tag)
            if refused := refusal(tag, plan.ref, sanitised, holder):
                say(f"==> not pushing {plan.image}:{tag}: {refused}")
                return None
            if holder is not None and takes_over(plan.ref, sanitised, holder):
                say(
                    f"==> {plan.image}:{tag} is {plan.ref}'s exact name: taking it back from "
                    f"{holder.ref}, whose sanitised name it was (build {holder.build_id})"
                )
            elif kind == TagKind.RELEASE:
                if kept := self._check_release(plan, tag, me.image_id):
                    say(
                        f"==> leaving {plan.image}:{tag} where it is: it holds an earlier build "
                        f"of this commit (build {kept.build_id}, {kept.digest}); release tags "
                        "do not move unless the rule says `overwrite: true`"
                    )
                    return None
            elif holder is not None and (older := why_older(me, holder, self.is_ancestor)):
                say(
                    f"==> leaving {plan.image}:{tag} where it is: {older}, from build "
                    f"{holder.build_id}; tags only move forward"
                )
                return None
            digest = self._push(plan, tag, auth, say, uploaded)
            self.ledger.record(plan.image, tag, _with_digest(me, digest, plan.ref, sanitised))
            return digest

    def _push(
        self,
        plan: BuildPlan,
        tag: str,
        auth: RegistryAuth | None,
        say: LineSink,
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


def _with_digest(holder: TagHolder, digest: str, ref: str, sanitised: bool) -> TagHolder:
    return TagHolder(
        sha=holder.sha,
        committed_at=holder.committed_at,
        version=holder.version,
        image_id=holder.image_id,
        digest=digest,
        build_id=holder.build_id,
        ref=ref,
        sanitised=sanitised,
    )
