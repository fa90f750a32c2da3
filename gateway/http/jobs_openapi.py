"""The Files and Batches routes in the gateway's OpenAPI document (``GET /openapi.json``).

When to use: ``gateway.http.openapi`` merges these paths into the public document, so clients see
the routes and the fuzz tests (schemathesis) drive them like the chat routes. Built from the same
pydantic model ``POST /v1/batches`` validates with.
"""

from __future__ import annotations

from typing import Any

from gateway.jobs.records import CreateBatch

OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}
ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
# Ids are "file-<hex>" / "batch_<hex>": the pattern keeps generated ids inside what a URL path
# carries as is (no characters the HTTP parser itself refuses before the gateway sees them).
ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}


def _answers(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "the object", **OBJECT}}
    for status in statuses:
        out[str(status)] = {"description": "an error in OpenAI's shape", **ERROR_REF}
    out["default"] = {"description": "an error in OpenAI's shape", **ERROR_REF}
    return out


def _op(summary: str, *statuses: int, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"bearer": []}],
        **extra,
        "responses": _answers(*statuses),
    }


def _path_id(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": ID}]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def jobs_schemas() -> dict[str, Any]:
    return {"CreateBatch": CreateBatch.model_json_schema()}


def jobs_paths() -> dict[str, Any]:
    upload = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": ["batch"]},
                    },
                }
            }
        },
    }
    create = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateBatch"}}},
    }
    paging = [_query("after", ID), _query("limit", {"type": "integer", "minimum": 1})]
    return {
        "/v1/files": {
            "post": _op(
                "Upload a batch input file (JSONL)", 400, 401, 403, 413, requestBody=upload
            ),
            "get": _op("The caller's files", 400, 401, parameters=paging),
        },
        "/v1/files/{file_id}": {
            "get": _op("A file", 401, 404, parameters=_path_id("file_id")),
            "delete": _op("Delete a file", 401, 404, 409, parameters=_path_id("file_id")),
        },
        "/v1/files/{file_id}/content": {
            "get": _op("A file's bytes", 401, 404, parameters=_path_id("file_id")),
        },
        "/v1/batches": {
            "post": _op("Start a batch", 400, 401, 403, 404, requestBody=create),
            "get": _op("The caller's batches", 400, 401, parameters=paging),
        },
        "/v1/batches/{batch_id}": {
            "get": _op("A batch", 401, 404, parameters=_path_id("batch_id")),
        },
        "/v1/batches/{batch_id}/cancel": {
            "post": _op("Cancel a batch", 401, 404, 409, parameters=_path_id("batch_id")),
        },
    }
