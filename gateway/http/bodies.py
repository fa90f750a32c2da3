"""Reading and validating request bodies: bytes -> typed request, or a clear 400/413."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from gateway.errors import BodyTooLarge, InvalidRequest
from gateway.rules import dotted

M = TypeVar("M", bound=BaseModel)

Receive = Any  # the ASGI receive callable


async def read_body(receive: Receive, content_length: int | None, limit: int) -> bytes:
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


def parse_json(body: bytes, model: type[M]) -> M:
    if not body:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = dotted(first["loc"])
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise InvalidRequest(
            f"Invalid value for '{where}': {first['msg']}{more}", param=where
        ) from None
