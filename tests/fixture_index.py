"""The published forge payloads' own index (tests/fixtures/webhooks/index.json) and what
hookbuild should read from each: shared by the parser tests and the receiver tests."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import FIXTURES

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
