"""GatewayError -> OpenAI's error JSON shape. The only place errors become responses."""

from __future__ import annotations

import math
from typing import Any

import orjson

from gateway.errors import AllTargetsFailed, GatewayError

JSON = (b"content-type", b"application/json")


def error_payload(err: GatewayError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": err.message,
        "type": err.type,
        "param": err.param,
        "code": err.code,
    }
    if isinstance(err, AllTargetsFailed):
        # Which targets were tried and why, so the caller and the operator see the same story.
        # Messages come from our own classification; they never carry credentials.
        body["attempts"] = [
            {"target": a.target, "error": a.error_kind, "status": a.status, "message": a.message}
            for a in err.attempts
        ]
    return {"error": body}


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps(error_payload(err))


def error_headers(err: GatewayError, request_id: str) -> list[tuple[bytes, bytes]]:
    headers = [JSON, (b"x-request-id", request_id.encode())]
    if err.retry_after_s is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(err.retry_after_s))).encode()))
    elif err.status in (429, 503):
        headers.append((b"retry-after", b"1"))
    return headers


def sse_error_event(err: GatewayError) -> bytes:
    return b"data: " + error_body(err) + b"\n\n"
