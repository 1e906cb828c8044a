"""`POST /api/preview`: what a push would build, per image and rule, and why; no build.

The same answer as `hookbuild preview --json`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from builder.config import Config
from builder.errors import TriggerRequestError
from builder.events import PushEvent
from builder.rules import decide
from builder.trigger import checked_sha
from webhooks.body import read_limited
from webhooks.bounds import NAME_CHARS, REASON_CHARS, clip
from webhooks.errors import RequestRejected

PLACEHOLDER_SHA = "0123456789abcdef0123456789abcdef01234567"


def preview(
    config: Config,
    repository: str,
    ref: str,
    sha: str | None = None,
    changed: Sequence[str] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """Raises `TriggerRequestError` for an unknown repository or a bad sha."""
    configured = config.repository_named(repository)
    if configured is None:
        raise TriggerRequestError(f"no repository {repository!r} in the config")
    full_ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    event = PushEvent(
        forge=configured.forge,
        repository=configured.name,
        ref=full_ref,
        sha=checked_sha(sha) or PLACEHOLDER_SHA,
        clone_url=(
            configured.default_clone_url
            or configured.payload_clone_url_example
            or "(from the payload)"
        ),
        message=message,
    )
    answer = decide(configured, event, changed).to_json()
    answer["ref"], answer["sha"] = full_ref, event.sha
    if changed is None and any(
        image.paths or image.ignore_paths for image in configured.all_images
    ):
        answer["note"] = "path filters not checked: give the changed files"
    return answer


class PreviewEndpoint:
    def __init__(self, config: Config) -> None:
        self.config = config

    async def handle(self, request: Request) -> JSONResponse:
        return await _answer(request, self.config)


async def _answer(request: Request, config: Config) -> JSONResponse:
    try:
        body = json.loads(await read_limited(request, config.server) or b"{}")
        if not isinstance(body, dict) or not isinstance(body.get("repository"), str):
            raise TriggerRequestError('give {"repository": ..., "ref": ...}')
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise TriggerRequestError('"ref" must be a branch, a tag ref or a full ref')
        changed = body.get("changed")
        if changed is not None and not (
            isinstance(changed, list) and all(isinstance(c, str) for c in changed)
        ):
            raise TriggerRequestError('"changed" must be a list of paths')
        message = body.get("message")
        if config.repository_named(body["repository"]) is None:
            shown = clip(body["repository"], NAME_CHARS)
            return JSONResponse({"error": f"no repository {shown!r} in the config"}, 404)
        return JSONResponse(
            preview(
                config,
                body["repository"],
                ref,
                body.get("sha"),
                changed,
                message if isinstance(message, str) else None,
            )
        )
    except (json.JSONDecodeError, UnicodeDecodeError, TriggerRequestError) as exc:
        return JSONResponse({"error": clip(str(exc), REASON_CHARS)}, 400)
    except RequestRejected as exc:
        return JSONResponse({"error": str(exc)}, exc.status_code)
