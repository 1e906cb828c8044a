"""Every published payload in tests/fixtures/webhooks (copied from shared/) goes through its forge's parser.

The expectations come from the fixtures' own index.json (derived from each payload); this
test only maps them onto hookbuild's push event.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.events import ZERO_SHA
from tests.conftest import FIXTURES
from tests.fixture_index import DRIVER_FOR, INDEX, expected_pushes
from webhooks.forges import default_drivers


def cases() -> list[Any]:
    return [pytest.param(entry, id=entry["file"]) for entry in INDEX["fixtures"]]


@pytest.mark.parametrize("entry", cases())
def test_fixture_parses_to_the_expected_push(entry: dict[str, Any]) -> None:
    driver = default_drivers()[DRIVER_FOR[entry["forge"]]]
    header, _, event_name = entry["event_header"].partition(": ")
    payload = json.loads((FIXTURES / entry["file"]).read_bytes())
    event = driver.event_name({header.lower(): event_name})
    assert event is not None and event == event_name, "each driver reads its own forge's header"

    parsed = driver.parse(event, payload, "delivery-1")

    wanted = expected_pushes(entry)
    if not wanted:
        assert parsed.events == () and parsed.ignored, "ignored events say why"
        return
    assert parsed.ignored is None
    got = [
        {
            "ref": push.ref,
            "sha": push.sha,
            "before": push.before,
            "deleted": push.deleted,
            "is_tag": push.ref_type == "tag",
            "clone_url": push.clone_url,
            "repository": push.repository,
            "pusher": push.pusher,
            "message": push.message,
        }
        for push in parsed.events
    ]
    assert got == wanted
    for push in parsed.events:
        assert push.forge == driver.name and push.delivery_id == "delivery-1"
        assert push.sha != ZERO_SHA
        assert driver.repository_name(event, payload) == push.repository


def test_every_fixture_forge_has_a_driver() -> None:
    assert {entry["forge"] for entry in INDEX["fixtures"]} <= set(DRIVER_FOR)
