"""`POST /trigger/{repository}/{token}`: Docker Hub's build triggers.

The body names the ref (`{"ref": "refs/heads/main"}` or `{"source_type": "Tag",
"source_name": "v1.2.3"}`, optionally `"sha"`); an empty body builds the default branch.
Without a sha the ref is resolved with `git ls-remote`, outside the event loop.
"""

from __future__ import annotations

import hmac
import json
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from builder.config import Config
from builder.errors import SourceError, TriggerRequestError
from builder.trigger import checked_sha, requested_ref
from runners.buildrequest import request_build
from runners.queue import BuildQueue
from webhooks.body import read_limited
from webhooks.bounds import NAME_CHARS, clip
from webhooks.errors import DeliveryRejected

_DECOY_TOKEN = secrets.token_hex(16)  # never matches: nobody knows it


class TriggerEndpoint:
    def __init__(self, config: Config, queue: BuildQueue) -> None:
        self.config = config
        self.queue = queue

    async def handle(self, request: Request) -> JSONResponse:
        name, _, token = request.path_params["rest"].rpartition("/")
        repository = self.config.repository_named(name)
        expected = repository.trigger_token if repository is not None else None
        # Compared even when there is nothing to compare with, so that an unknown repository
        # costs what a wrong token costs.
        matches = hmac.compare_digest(token.encode(), (expected or _DECOY_TOKEN).encode())
        if repository is None or not expected or not matches:
            return self._refused(repository is None, bool(expected), name)
        try:
            body = await read_limited(request, self.config.server)
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise TriggerRequestError("the body must be a JSON object")
            ref, sha = requested_ref(data), checked_sha(data.get("sha"))
            outcome = await run_in_threadpool(
                request_build, self.queue, repository, ref, sha, "trigger"
            )
        except DeliveryRejected as exc:
            return JSONResponse({"error": str(exc)}, exc.status_code)
        except (TriggerRequestError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except SourceError as exc:
            return JSONResponse({"error": str(exc)}, 502 if exc.transient else 404)
        answer = {"builds": outcome.builds, "ref": outcome.ref, "sha": outcome.sha}
        if outcome.skipped:
            return JSONResponse(answer | {"skipped": outcome.skipped})
        return JSONResponse(answer, 202)

    def _refused(self, unknown: bool, enabled: bool, name: str) -> JSONResponse:
        if not self.config.server.public:
            # Private reads: one answer for all three, or it would list the repositories.
            return JSONResponse({"error": "wrong trigger token"}, 401)
        shown = clip(name, NAME_CHARS)
        if unknown:
            return JSONResponse({"error": f"no repository {shown!r} in the config"}, 404)
        if not enabled:
            return JSONResponse(
                {"error": f"triggers are off for {shown!r}: set its trigger_token in the config"},
                403,
            )
        return JSONResponse({"error": "wrong trigger token"}, 401)
