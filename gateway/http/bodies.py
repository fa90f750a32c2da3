"""Reading and validating request bodies: bytes -> typed request, or a clear 400/413."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from gateway.errors import BodyTimeout, BodyTooLarge, InvalidRequest
from gateway.rules import dotted

M = TypeVar("M", bound=BaseModel)
# Deepest nesting of arrays/objects a body may have. orjson reads up to 1,024 levels but writes
# only 254, and the body is written again (upstream body, cache key): a body it cannot write
# must be refused here, as a 400, not fail later. Real requests (tool schemas included) stay
# far below this.
MAX_DEPTH = 64

Receive = Any  # the ASGI receive callable


async def read_body(
    receive: Receive, content_length: int | None, limit: int, timeout_s: float = 30.0
) -> bytes:
    """The whole body, or 413 past ``limit`` bytes, or 408 when it is not complete within
    ``timeout_s`` (a slow sender cannot hold a request open indefinitely)."""
    if content_length is not None and content_length > limit:
        raise BodyTooLarge(
            f"Request body of {content_length} bytes exceeds the {limit} byte limit."
        )
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(f"Request body exceeds the {limit} byte limit.")
        return body
    try:
        async with asyncio.timeout(timeout_s):
            return await _rest_of_body(receive, message, body, limit)
    except TimeoutError:
        raise BodyTimeout(f"The request body did not arrive within {timeout_s:g} s.") from None


async def _rest_of_body(receive: Receive, message: Any, body: bytes, limit: int) -> bytes:
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client disconnected while sending the body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body exceeds the {limit} byte limit.")
        parts.append(chunk)
    return b"".join(parts)


def body_deadline(receive: Receive, timeout_s: float) -> Receive:
    """``receive`` for routes that read their own body: the body must be complete within
    ``timeout_s`` of the first read, else ``BodyTimeout`` (a 408 from the route's handler)."""
    state: dict[str, float | bool] = {}

    async def bounded() -> Any:
        if state.get("done"):
            return await receive()
        loop = asyncio.get_running_loop()
        deadline = float(state.setdefault("deadline", loop.time() + timeout_s))
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            state["done"] = True
            raise BodyTimeout(f"The request body did not arrive within {timeout_s:g} s.") from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            state["done"] = True
        return message

    return bounded


def parse_json(body: bytes, model: type[M]) -> M:
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # Nesting deeper than MAX_DEPTH needs more than MAX_DEPTH openings: most bodies are ruled
    # out by two byte counts in C, without walking the parsed tree.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and too_deep(data, MAX_DEPTH):
        raise InvalidRequest(f"The request body is nested deeper than {MAX_DEPTH} levels.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        if not first["loc"]:  # a rule across fields (a model validator)
            msg = first["msg"].removeprefix("Value error, ")
            raise InvalidRequest(f"Invalid request: {msg}{more}") from None
        where = dotted(first["loc"])
        raise InvalidRequest(
            f"Invalid value for '{where}': {first['msg']}{more}", param=where
        ) from None


def too_deep(data: dict[str, Any], limit: int) -> bool:
    """True when arrays/objects nest more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False
