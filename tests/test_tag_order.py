"""Moving tags move forward only, whatever order builds finish in (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.tags.order import TagHolder, is_newer
from builder.tags.versions import parse_version


def linear_history(n: int) -> list[TagHolder]:
    """Commits 0..n-1 on one branch, each the parent of the next."""
    return [TagHolder(sha=f"{i:040x}", committed_at=1_000_000 + i) for i in range(n)]


def ancestry_of(history: list[TagHolder]):  # type: ignore[no-untyped-def]
    index = {h.sha: i for i, h in enumerate(history)}
    return lambda a, b: index[a] <= index[b]


def complete_in_order(history: list[TagHolder], order: list[int], ancestry) -> list[int]:  # type: ignore[no-untyped-def]
    """Apply builds finishing in `order` to one moving tag; the holder after each."""
    holder: TagHolder | None = None
    seen = []
    for index in order:
        build = history[index]
        if holder is None or is_newer(build, holder, ancestry):
            holder = build
        seen.append(int(holder.sha, 16))
    return seen


@settings(max_examples=300)
@given(st.integers(2, 12).flatmap(lambda n: st.permutations(list(range(n)))))
def test_branch_tag_never_moves_backwards(order: list[int]) -> None:
    history = linear_history(len(order))
    holders = complete_in_order(history, order, ancestry_of(history))
    assert holders == sorted(holders), "the tag never moved to an older commit"
    assert holders[-1] == len(order) - 1, "it ends on the newest commit"


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 9)),
        min_size=1,
        max_size=12,
        unique=True,
    ).flatmap(lambda versions: st.permutations(versions))
)
def test_release_tag_follows_semver_order_not_completion_order(
    versions: list[tuple[int, int, int]],
) -> None:
    # Releases are cut from unrelated commits: only their versions order them.
    builds = [
        TagHolder(sha=f"{i:040x}", committed_at=0, version=f"{a}.{b}.{c}")
        for i, (a, b, c) in enumerate(versions)
    ]
    holder: TagHolder | None = None
    best = None
    for build in builds:
        if holder is None or is_newer(build, holder, lambda a, b: None):
            holder = build
        version = parse_version(build.version or "")
        best = version if best is None or (version is not None and version > best) else best
        assert holder is not None and parse_version(holder.version or "") == best


def test_force_push_falls_back_to_commit_date() -> None:
    old = TagHolder(sha="a" * 40, committed_at=100)
    rewritten = TagHolder(sha="b" * 40, committed_at=200)
    unrelated = lambda a, b: False  # noqa: E731
    assert is_newer(rewritten, old, unrelated) and not is_newer(old, rewritten, unrelated)


def test_prerelease_is_older_than_its_release() -> None:
    rc = TagHolder(sha="a" * 40, committed_at=300, version="2.0.0-rc.1")
    final = TagHolder(sha="b" * 40, committed_at=100, version="2.0.0")
    assert is_newer(final, rc, lambda a, b: None) and not is_newer(rc, final, lambda a, b: None)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 9)),
        min_size=2,
        max_size=8,
        unique=True,
    ).flatmap(lambda versions: st.permutations(versions))
)
def test_releases_of_one_commit_follow_semver_order_too(
    versions: list[tuple[int, int, int]],
) -> None:
    """v1.3.0..v1.3.3 tagged on one commit, built in any order: the highest holds `1.3`."""
    builds = [
        TagHolder(sha="c" * 40, committed_at=0, version=f"{a}.{b}.{c}") for a, b, c in versions
    ]
    holder: TagHolder | None = None
    for build in builds:
        if holder is None or is_newer(build, holder, lambda a, b: None):
            holder = build
    assert holder is not None
    highest = max(versions)  # (major, minor, patch) tuples order as their versions do
    assert holder.version == "{}.{}.{}".format(*highest)
