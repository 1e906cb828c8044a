"""The tag ledger's per-tag lock, on real Redis: one holder at a time, released on error."""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

from builder.errors import HookbuildError
from runners import tagledger
from runners.tagledger import RedisTagLedger


def test_one_holder_of_a_tag_at_a_time_and_the_lock_is_freed_on_error(redis: Redis) -> None:
    ledger = RedisTagLedger(redis)
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with ledger.hold("reg/app", "latest"):
            events.append("first in")
            inside.set()
            time.sleep(0.3)
            events.append("first out")

    def second() -> None:
        inside.wait(5)
        with ledger.hold("reg/app", "latest"):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert events == ["first in", "first out", "second in"]

    with pytest.raises(RuntimeError), ledger.hold("reg/app", "latest"):
        raise RuntimeError("the push failed")
    assert redis.keys("*:lock") == []  # released: the next build need not wait it out
    with ledger.hold("reg/app", "v1"), ledger.hold("reg/app", "latest"):
        assert len(redis.keys("*:lock")) == 2  # tags lock apart


def test_a_tag_lock_held_too_long_fails_the_build_saying_so(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#17.3: a tag's lock that another build holds past the wait is a `HookbuildError`
    naming the tag and the lock (the build fails with that reason), not Redis's `LockError`
    (which the build reported as an "internal error")."""
    monkeypatch.setattr(tagledger, "LOCK_WAIT_SECONDS", 0.2)
    ledger = RedisTagLedger(redis)
    with (
        ledger.hold("reg/app", "v1"),
        pytest.raises(HookbuildError) as caught,
        ledger.hold("reg/app", "v1"),
    ):
        pass
    assert "reg/app:v1" in str(caught.value)
    assert "lock" in str(caught.value)
    assert not caught.value.transient
