"""The OpenAPI description of the gateway's public surface, served at ``GET /openapi.json``.

When to use: clients and tools that want a machine-readable description (the fuzz tests run
schemathesis against it). The two hot routes are raw ASGI (``gateway/http/edge.py``), so
FastAPI's generated document would not list them; this one is built from the same pydantic
models the edge validates with, so it cannot drift from what is accepted. The admin API is not
part of the public surface and is not described here.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.http.jobs_openapi import jobs_paths, jobs_schemas
from gateway.requests import ChatRequest, EmbeddingsRequest

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        str(s): {"description": "an error in OpenAI's shape", **_json(ERROR)} for s in statuses
    }
    out["default"] = {"description": "an error in OpenAI's shape", **_json(ERROR)}
    return out


def _post(summary: str, model: str, answer: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                **_json({"$ref": f"#/components/schemas/{model}"}),
            },
            "responses": {
                "200": {
                    "description": answer,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 401, 404, 408, 409, 413, 422, 429, 502, 503, 504),
            },
        }
    }


def document(version: str) -> dict[str, Any]:
    chat = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    embeddings = EmbeddingsRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {}
    for schema in (chat, embeddings):
        schemas.update(schema.pop("$defs", {}))
    schemas["ChatRequest"] = chat
    schemas["EmbeddingsRequest"] = embeddings
    schemas["Error"] = ERROR
    schemas.update(jobs_schemas())
    status = {"type": "object"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tiergate (OpenAI-compatible LLM gateway)", "version": version},
        "paths": {
            "/v1/chat/completions": _post(
                "Chat completion (JSON, or SSE when stream is true)",
                "ChatRequest",
                "a chat.completion object, or an SSE stream of chunks",
            ),
            "/v1/embeddings": _post("Embeddings", "EmbeddingsRequest", "a list of embeddings"),
            "/v1/models": {
                "get": {
                    "summary": "The aliases this key may use",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "a list of models", **_json(status)},
                        **_errors(401, 503),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": {"description": "alive", **_json(status)}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness (config loaded, state store reachable)",
                    "responses": {
                        "200": {"description": "ready", **_json(status)},
                        "503": {"description": "not ready", **_json(status)},
                    },
                }
            },
            **jobs_paths(),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def document_bytes(version: str) -> bytes:
    return orjson.dumps(document(version))
