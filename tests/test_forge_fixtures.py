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
from webhooks.forges import default_drivers

INDEX = json.loads((FIXTURES / "index.json").read_text())
# Fixture folder -> the driver (endpoint) that receives that forge's deliveries.
DRIVER_FOR = {
    "github": "github",
    "gitlab": "gitlab",
    "bitbucket-cloud": "bitbucket",
    "bitbucket-server": "bitbucket-server",
    "gitea": "gitea",
    "forgejo": "forgejo",
    "gogs": "gogs",
}
PUSH_EVENTS = {
    "push",
    "Push Hook",
    "Tag Push Hook",
    "System Hook",
    "repo:push",
    "repo:refs_changed",
}


def cases() -> list[Any]:
    return [pytest.param(entry, id=entry["file"]) for entry in INDEX["fixtures"]]


def expected_pushes(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """What hookbuild should extract: one dict per push event, [] for ignored events."""
    expect = entry["expect"]
    event = entry["event_header"].partition(": ")[2]
    full_name = expect["full_name"]
    if event in ("repo:push", "repo:refs_changed"):
        derived = f"https://bitbucket.org/{full_name}.git" if event == "repo:push" else None
        return [
            {
                "ref": change["ref"],
                "sha": "" if change["is_delete"] else change["after"],
                "before": change["before"] or "",
                "deleted": change["is_delete"],
                "is_tag": change["is_tag"],
                "clone_url": expect["clone_url_http"] or derived,
                "repository": full_name,
                "pusher": expect["pusher"],
                "message": change["head_commit_message"],
            }
            for change in expect["changes"]
        ]
    if event == "create" and expect["is_tag"] and entry["forge"] in ("gitea", "forgejo", "gogs"):
        if not expect["after"]:
            return []  # older servers send no commit id: the tag's push event builds it
        return [
            {
                "ref": f"refs/tags/{expect['ref']}",
                "sha": expect["after"],
                "before": "",
                "deleted": False,
                "is_tag": True,
                "clone_url": expect["clone_url_http"],
                "repository": full_name,
                "pusher": expect["pusher"],
                "message": None,
            }
        ]
    if event not in PUSH_EVENTS:
        return []
    sha = expect.get("checkout_sha") or expect["after"]
    return [
        {
            "ref": expect["ref"],
            "sha": "" if expect["is_delete"] else sha,
            "before": expect["before"],
            "deleted": expect["is_delete"],
            "is_tag": expect["is_tag"],
            "clone_url": expect["clone_url_http"],
            "repository": full_name,
            "pusher": expect["pusher"],
            "message": None if expect["is_delete"] else expect["head_commit_message"],
        }
    ]


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
