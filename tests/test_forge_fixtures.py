"""Every published payload in shared/fixtures/webhooks goes through its forge's parser.

The expectations come from the fixtures' own index.json; a forge whose driver exists is
checked on every one of its files.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from builder.events import ZERO_SHA
from tests.conftest import FIXTURES
from webhooks.forges import default_drivers

INDEX = json.loads((FIXTURES / "index.json").read_text())
# Fixture folder -> (driver name, event header) the delivery is received with.
DRIVER_FOR = {"github": "github"}


def cases() -> list[Any]:
    found = []
    for entry in INDEX["fixtures"]:
        if entry["forge"] in DRIVER_FOR:
            found.append(pytest.param(entry, id=entry["file"]))
    return found


def parse(entry: dict[str, Any]) -> Any:
    driver = default_drivers()[DRIVER_FOR[entry["forge"]]]
    header, _, event = entry["event_header"].partition(": ")
    headers = {header.lower(): event}
    payload = json.loads((FIXTURES / entry["file"]).read_bytes())
    return driver, driver.parse(driver.event_name(headers) or "", payload, "delivery-1")


@pytest.mark.parametrize("entry", cases())
def test_fixture_parses_to_the_expected_push(entry: dict[str, Any]) -> None:
    driver, parsed = parse(entry)
    expect = entry["expect"]
    event = entry["event_header"].partition(": ")[2]
    if event != "push":
        assert parsed.events == () and parsed.ignored, "non-push events are ignored with a reason"
        return
    [push] = parsed.events
    assert push.forge == driver.name
    assert push.ref == expect["ref"]
    assert push.deleted is expect["is_delete"]
    assert push.sha == ("" if expect["is_delete"] else expect["after"])
    assert push.before == expect["before"]
    assert (push.ref_type == "tag") is expect["is_tag"]
    assert push.clone_url == expect["clone_url_http"]
    assert push.repository == expect["full_name"]
    assert push.pusher == expect["pusher"]
    assert push.message == expect["head_commit_message"]
    assert push.delivery_id == "delivery-1"
    assert push.sha != ZERO_SHA
