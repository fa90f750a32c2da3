"""The lines of a batch's output and error files, in OpenAI's format (pure functions).

A line that ran and succeeded goes to the output file; a line the gateway refused or could not
serve goes to the error file with the HTTP status and the OpenAI error body a direct call would
have returned; a line that never ran (the window expired) goes to the error file with
``response: null`` and ``error.code = "batch_expired"``. Every line carries its ``custom_id``:
clients match results by id, never by position.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def new_line_id() -> str:
    return "batch_req_" + os.urandom(12).hex()


def output_line(custom_id: str, request_id: str, body: bytes) -> bytes:
    """A 200 answer: ``body`` is the raw JSON the pipeline returned (chat.completion, list)."""
    return orjson.dumps(
        {
            "id": new_line_id(),
            "custom_id": custom_id,
            "response": {
                "status_code": 200,
                "request_id": request_id,
                "body": orjson.loads(body),
            },
            "error": None,
        }
    )


def error_line(custom_id: str, request_id: str, status: int, payload: dict[str, Any]) -> bytes:
    """A refused or failed request: ``payload`` is the OpenAI error JSON (``{"error": ...}``)."""
    return orjson.dumps(
        {
            "id": new_line_id(),
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id, "body": payload},
            "error": None,
        }
    )


def expired_line(custom_id: str) -> bytes:
    return orjson.dumps(
        {
            "id": new_line_id(),
            "custom_id": custom_id,
            "response": None,
            "error": {"code": "batch_expired", "message": EXPIRED_MESSAGE},
        }
    )


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def usage_of(lines: list[bytes]) -> dict[str, Any]:
    """OpenAI's ``BatchUsage`` summed over output lines (chat completions and embeddings)."""
    prompt = completion = cached = reasoning = 0
    for raw in lines:
        body = orjson.loads(raw).get("response", {}).get("body", {})
        usage = body.get("usage") if isinstance(body, dict) else None
        if not isinstance(usage, dict):
            continue
        # Chat, completions and embeddings say prompt/completion; the Responses API input/output.
        prompt += int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        completion += int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        inputs = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        outputs = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
        cached += int(inputs.get("cached_tokens") or 0)
        reasoning += int(outputs.get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }
