"""A build nobody pushed (the trigger URL, `hookbuild build`): resolve its ref, match the
rules as a push would, and queue what they give. (builder/manual.py makes the event.)"""

from __future__ import annotations

from dataclasses import dataclass

from builder.build.source import resolve_ref
from builder.config import RepositoryConfig
from builder.errors import TriggerRequestError
from builder.refs import ref_problem
from builder.rules import decide
from builder.trigger import manual_event
from runners.queue import BuildQueue


@dataclass(frozen=True)
class ManualOutcome:
    ref: str
    sha: str
    builds: list[str]
    skipped: str | None


def request_build(
    queue: BuildQueue, repository: RepositoryConfig, ref: str | None, sha: str | None, who: str
) -> ManualOutcome:
    """Resolve `ref` (with `git ls-remote` unless `sha` is given), match the rules, queue."""
    clone_url = repository.default_clone_url
    if clone_url is None:
        raise TriggerRequestError(
            f"repository {repository.name!r} has no clone_url in the config, and a "
            f"{repository.forge_facts.title} server's address cannot be guessed: set clone_url"
        )
    if sha is None:
        ref, sha = resolve_ref(clone_url, ref, repository.clone_credentials)
    elif ref is None:
        raise TriggerRequestError("a sha needs its ref too, so that the rules can match it")
    elif not ref.startswith("refs/"):
        ref = f"refs/heads/{ref}"
    if problem := ref_problem(ref):
        raise TriggerRequestError(problem)
    decision = decide(repository, manual_event(repository, clone_url, ref, sha, who))
    if not decision.plans:
        return ManualOutcome(ref, sha, [], decision.skipped)
    return ManualOutcome(ref, sha, queue.submit(decision.plans), None)
