"""The batch input file: JSONL, one request per line, checked whole before anything runs.

Policy: a file is accepted only when every line is a JSON object with a ``custom_id`` (a
non-empty string, unique in the file), ``method: "POST"``, a ``url`` the gateway serves in a
batch (``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/completions``, ``/v1/responses``) and
a JSON-object ``body``; ``stream`` is
refused (a batch line has nobody to stream to). The first problem is reported with its 1-based
line number, as OpenAI does, so a client can fix the file before it is stored. Blank lines are
ignored. Whether a ``body`` is a valid request (model, messages, ...) is the pipeline's call when
the line runs: a bad body becomes one line of the batch's error file, not a rejected upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.http.bodies import MAX_DEPTH, too_deep

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
# The last two are served by translation to chat (gateway/surface), as at the edge.
ENDPOINTS = (CHAT, EMBEDDINGS, "/v1/completions", "/v1/responses")
MAX_CUSTOM_ID_CHARS = 512


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch: ``index`` is its 0-based position among the non-blank lines,
    ``line`` its 1-based line number in the file."""

    index: int
    line: int
    custom_id: str
    url: str
    body: Mapping[str, Any]


class InvalidLine(InvalidRequest):
    """A line of an uploaded batch file is not a valid batch request (400, names the line)."""

    code = "invalid_batch_line"

    def __init__(self, line: int, message: str, param: str | None = None) -> None:
        super().__init__(f"Line {line}: {message}", param=param)
        self.line = line


def parse_line(number: int, index: int, raw: bytes, seen: set[str]) -> BatchLine:
    """One non-blank line -> BatchLine, or ``InvalidLine`` naming what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidLine(number, "not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidLine(number, "must be a JSON object.")
    if too_deep(data, MAX_DEPTH + 1):  # the body sits one level down
        raise InvalidLine(number, f"'body' is nested deeper than {MAX_DEPTH} levels.", "body")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise InvalidLine(number, "'custom_id' must be a non-empty string.", "custom_id")
    if len(custom_id) > MAX_CUSTOM_ID_CHARS:
        raise InvalidLine(number, f"'custom_id' is over {MAX_CUSTOM_ID_CHARS} characters.")
    if custom_id in seen:
        raise InvalidLine(number, f"duplicate custom_id '{custom_id}'.", "custom_id")
    if data.get("method") != "POST":
        raise InvalidLine(number, "'method' must be \"POST\".", "method")
    url = data.get("url")
    if url not in ENDPOINTS:
        allowed = " or ".join(ENDPOINTS)
        raise InvalidLine(number, f"'url' must be {allowed}, not {url!r}.", "url")
    body = data.get("body")
    if not isinstance(body, dict):
        raise InvalidLine(number, "'body' must be a JSON object.", "body")
    if body.get("stream"):
        raise InvalidLine(number, "'body.stream' is not supported in a batch.", "body.stream")
    extra = set(data) - {"custom_id", "method", "url", "body"}
    if extra:
        raise InvalidLine(number, f"unknown field(s): {', '.join(sorted(extra))}.")
    seen.add(custom_id)
    return BatchLine(index=index, line=number, custom_id=custom_id, url=str(url), body=body)


def parse_batch_file(data: bytes, max_lines: int) -> tuple[BatchLine, ...]:
    """Every request of a batch input file, in order; raises ``InvalidRequest`` on the first
    problem. When to use: on upload (``purpose=batch``) and again when a batch starts."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The file is not UTF-8 text (expected JSONL).") from None
    seen: set[str] = set()
    lines: list[BatchLine] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(lines) >= max_lines:
            raise InvalidLine(number, f"a batch holds at most {max_lines} requests.")
        lines.append(parse_line(number, len(lines), raw, seen))
    if not lines:
        raise InvalidRequest("The file has no requests (expected one JSON object per line).")
    return tuple(lines)


def endpoint_problems(lines: tuple[BatchLine, ...], endpoint: str) -> list[dict[str, Any]]:
    """OpenAI ``BatchError`` objects for lines whose url is not the batch's endpoint (at most
    a few: the first ones tell the client what to fix)."""
    problems: list[dict[str, Any]] = []
    for line in lines:
        if line.url != endpoint and len(problems) < 10:
            problems.append(
                {
                    "code": "mismatched_endpoint",
                    "line": line.line,
                    "message": f"The line's url {line.url} is not the batch's endpoint {endpoint}.",
                    "param": "url",
                }
            )
    return problems
