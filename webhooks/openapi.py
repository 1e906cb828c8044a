"""`GET /api/openapi.json`: the HTTP API, described for clients and contract tests."""

from __future__ import annotations

from typing import Any

from webhooks.forges import FORGES

BUILD_STATUS = {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "skipped"]}
BUILD = {
    "type": "object",
    "required": [
        "id",
        "forge",
        "repository",
        "ref",
        "sha",
        "short_sha",
        "image",
        "tags",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "digest",
        "digests",
        "error",
        "queue_position",
    ],
    "properties": {
        "id": {"type": "string"},
        "forge": {"type": "string"},
        "repository": {"type": "string"},
        "ref": {"type": "string"},
        "sha": {"type": "string"},
        "short_sha": {"type": "string"},
        "image": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "status": BUILD_STATUS,
        "created_at": {"type": "number"},
        "started_at": {"type": ["number", "null"]},
        "finished_at": {"type": ["number", "null"]},
        "duration": {"type": ["number", "null"]},
        "digest": {"type": ["string", "null"]},
        "digests": {"type": "object", "additionalProperties": {"type": "string"}},
        "error": {"type": ["string", "null"]},
        "queue_position": {"type": ["integer", "null"]},
        "worker": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "pusher": {"type": ["string", "null"]},
        "delivery_id": {"type": ["string", "null"]},
        "attempt": {"type": "integer"},
        "log_cut": {"type": "boolean", "description": "the log reached logs.max_bytes"},
    },
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
SHA = {"type": "string", "pattern": "^[0-9a-fA-F]{40}$"}
PREVIEW_REQUEST = {
    "type": "object",
    "required": ["repository", "ref"],
    "properties": {
        "repository": {"type": "string"},
        "ref": {"type": "string", "minLength": 1, "description": "main, v1.2 or a full ref"},
        "sha": SHA,
        "changed": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string"},
    },
}
TRIGGER_REQUEST = {
    "type": "object",
    "description": "Empty: the default branch. Or a ref, or Docker Hub's source_type/name.",
    "properties": {
        "ref": {"type": "string", "minLength": 1},
        "sha": SHA,
        "source_type": {"enum": ["Branch", "Tag"]},
        "source_name": {"type": "string", "minLength": 1},
    },
    "dependentRequired": {"source_type": ["source_name"], "source_name": ["source_type"]},
}
BUILDS_QUEUED = {
    "type": "object",
    "required": ["builds"],
    "properties": {"builds": {"type": "array", "items": {"type": "string"}}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _id(name: str = "build_id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "hookbuild", "version": "0.1.0"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Build": BUILD, "Error": ERROR},
        },
        "paths": {
            "/hooks/{forge}": {
                "post": {
                    "summary": "Receive a forge's webhook",
                    "parameters": [
                        {
                            "name": "forge",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(FORGES)},
                        }
                    ],
                    "responses": {
                        "202": _json(BUILDS_QUEUED, "builds queued"),
                        "200": {"description": "ignored or skipped, with the reason"},
                        "400": _json(ERROR, "malformed"),
                        "401": _json(ERROR, "bad signature"),
                        "404": _json(ERROR, "unknown forge or repository"),
                        "408": _json(ERROR, "the body came too slowly"),
                        "413": _json(ERROR, "too large"),
                        "503": _json(ERROR, "could not queue; redeliver"),
                    },
                }
            },
            "/trigger/{repository}/{token}": {
                "post": {
                    "summary": "Build trigger",
                    "parameters": [_id("repository"), _id("token")],
                    "requestBody": _body(TRIGGER_REQUEST, required=False),
                    "responses": {
                        "202": _json(BUILDS_QUEUED, "builds queued"),
                        "200": {"description": "nothing to build"},
                        "400": _json(ERROR, "bad body"),
                        "401": _json(ERROR, "wrong token"),
                        "403": _json(ERROR, "triggers off"),
                        "404": _json(ERROR, "unknown repository or ref"),
                        "413": _json(ERROR, "too large"),
                        "502": _json(ERROR, "the repository could not be reached; try again"),
                    },
                }
            },
            "/api/builds": {
                "get": {
                    "summary": "Builds, newest first; filters combine",
                    "parameters": [
                        {"name": "repository", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": BUILD_STATUS},
                        {
                            "name": "ref",
                            "in": "query",
                            "description": "refs/heads/main or main, refs/tags/v1 or v1",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["builds", "limit", "offset"],
                                "properties": {
                                    "builds": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Build"},
                                    },
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            },
                            "a page",
                        ),
                        "400": _json(ERROR, "an unknown status, or a malformed number"),
                    },
                }
            },
            "/api/builds/{build_id}": {
                "get": {
                    "summary": "One build",
                    "parameters": [_id()],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Build"}, "the build"),
                        "404": _json(ERROR, "no such build"),
                    },
                }
            },
            "/api/builds/{build_id}/log": {
                "get": {
                    "summary": (
                        "A build's log: text, or with follow=true Server-Sent Events "
                        "(one per line, id = line number)"
                    ),
                    "parameters": [
                        _id(),
                        {
                            "name": "start",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
                        },
                        {"name": "follow", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "the log",
                            "content": {"text/plain": {}, "text/event-stream": {}},
                        },
                        "400": _json(ERROR, "a malformed start or Last-Event-ID"),
                        "404": _json(ERROR, "no such build"),
                    },
                }
            },
            "/api/builds/{build_id}/cancel": {
                "post": {
                    "summary": "Cancel a build wherever it is",
                    "parameters": [_id()],
                    "security": BEARER,
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/Build"}, "the build, cancelled"
                        ),
                        "401": _json(ERROR, "needs the token"),
                        "403": _json(ERROR, "no token configured"),
                        "404": _json(ERROR, "no such build"),
                    },
                }
            },
            "/api/builds/{build_id}/rebuild": {
                "post": {
                    "summary": "Build the same plan again",
                    "parameters": [_id()],
                    "security": BEARER,
                    "responses": {
                        "202": _json(BUILDS_QUEUED, "queued"),
                        "401": _json(ERROR, "needs the token"),
                        "403": _json(ERROR, "no token configured"),
                        "404": _json(ERROR, "no such build"),
                        "409": _json(ERROR, "the build kept no plan to run again"),
                    },
                }
            },
            "/api/events": {
                "get": {
                    "summary": "Webhook deliveries and what came of each",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["events"],
                                "properties": {
                                    "events": {"type": "array", "items": {"type": "object"}}
                                },
                            },
                            "deliveries",
                        ),
                        "400": _json(ERROR, "a malformed limit"),
                    },
                }
            },
            "/api/preview": {
                "post": {
                    "summary": "What a push would build, and why",
                    "requestBody": _body(PREVIEW_REQUEST, required=True),
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["images", "skipped"]}, "the decision"
                        ),
                        "400": _json(ERROR, "bad request"),
                        "404": _json(ERROR, "no such repository"),
                        "413": _json(ERROR, "too large"),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
            "/badge/{repository}/{ref}.svg": {
                "get": {
                    "summary": "The ref's last build status as a badge",
                    "parameters": [_id("repository"), _id("ref")],
                    "responses": {
                        "200": {"description": "SVG", "content": {"image/svg+xml": {}}},
                        "404": _json(ERROR, "not a badge address"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text format 0.0.4"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Redis and the Docker engine reachable",
                    "responses": {"200": {"description": "healthy"}, "503": {"description": "not"}},
                }
            },
        },
    }
