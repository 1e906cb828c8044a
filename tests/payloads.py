"""Push payloads of each forge family, from its published fixture (tests/fixtures/webhooks),
pointed at a repository, a clone URL and a commit: `(event name, payload)`."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import FIXTURES


def gitlab(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads((FIXTURES / "gitlab/push-branch-goscm.json").read_bytes())
    payload["project"]["path_with_namespace"] = name
    payload["project"]["git_http_url"] = url
    payload.update(ref="refs/heads/main", after=sha, checkout_sha=sha, commits=[])
    return "Push Hook", payload


def bitbucket(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads(
        (FIXTURES / "bitbucket-cloud/repo_push-branch-woodpecker.json").read_bytes()
    )
    payload["repository"]["full_name"] = name
    change = payload["push"]["changes"][0]
    change["new"].update(name="main", type="branch")
    change["new"]["target"]["hash"] = sha
    return "repo:push", payload


def bitbucket_server(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads(
        (
            FIXTURES / "bitbucket-server/repo_refs_changed-branch-updated-woodpecker.json"
        ).read_bytes()
    )
    key, slug = name.split("/")
    payload["repository"]["project"]["key"] = key
    payload["repository"]["slug"] = slug
    payload["repository"]["links"]["clone"] = [{"name": "http", "href": url}]
    payload["changes"][0].update(refId="refs/heads/main", toHash=sha, type="UPDATE")
    payload["changes"][0]["ref"].update(id="refs/heads/main", displayId="main")
    return "repo:refs_changed", payload


def gitea(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads((FIXTURES / "gitea/push-branch-multi-woodpecker.json").read_bytes())
    payload["repository"]["full_name"] = name
    payload["repository"]["clone_url"] = url
    payload.update(ref="refs/heads/main", after=sha)
    return "push", payload
