"""Who may read and who may change: `Authorization: Bearer <server.token>`.

Anything that changes state needs the token, compared in constant time; with no token
configured those endpoints are off (403), never open. Reads are open unless
`server.public: false`.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse

from builder.config import ServerConfig


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _matches(request: Request, expected: str) -> bool:
    return hmac.compare_digest(_bearer(request).encode(), expected.encode())


def refuse_change(request: Request, server: ServerConfig) -> JSONResponse | None:
    """None if the request may change state; else the answer to give."""
    if not server.token:
        return JSONResponse(
            {"error": "state-changing endpoints are off: set server.token in the config"}, 403
        )
    if not _matches(request, server.token):
        return JSONResponse({"error": "needs Authorization: Bearer <server.token>"}, 401)
    return None


def refuse_read(request: Request, server: ServerConfig) -> JSONResponse | None:
    if server.public:
        return None
    if not server.token or not _matches(request, server.token):
        return JSONResponse({"error": "needs Authorization: Bearer <server.token>"}, 401)
    return None
