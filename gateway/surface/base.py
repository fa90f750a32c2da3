"""The interface every translated client API implements, and the SSE framing they share.

A ``Surface`` is used by ``gateway.http.surface_edge`` in three steps: ``translate`` the request
body into a ``ChatRequest`` (after the key was checked), run the chat pipeline, then render the
answer with ``whole`` (one body) or ``stream`` (SSE frames, complete with their ``event:`` and
``data:`` lines). Errors are rendered by the surface too, because each client expects its own
error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from gateway.calls import Principal, Reply
from gateway.errors import GatewayError
from gateway.requests import ChatRequest
from gateway.rules import Rules


@dataclass(frozen=True, slots=True)
class Translated:
    """A surface request as a chat request, plus what the surface needs to render the answer."""

    request: ChatRequest
    stream: bool
    state: object = None


@dataclass(frozen=True, slots=True)
class Context:
    """Who is calling, under which rules: what ``translate`` may read."""

    principal: Principal
    rules: Rules
    request_id: str


class Surface(Protocol):
    """One client API served by translating to chat completions."""

    name: str
    # Also accept the key as ``x-api-key`` (Anthropic's clients send it there).
    accepts_x_api_key: bool
    # Bytes after a complete stream (``data: [DONE]`` for OpenAI's legacy shape).
    stream_tail: bytes

    async def translate(self, body: bytes, context: Context) -> Translated: ...

    async def whole(self, translated: Translated, answer: bytes, reply: Reply) -> bytes: ...

    def stream(self, translated: Translated, reply: Reply) -> AsyncIterator[bytes]: ...

    def error_body(self, err: GatewayError) -> bytes: ...

    def stream_error(self, err: GatewayError) -> bytes: ...


def sse(event: str, data: object) -> bytes:
    """One named SSE event (``event:`` + ``data:`` lines)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def sse_data(data: object) -> bytes:
    """One unnamed SSE event (``data:`` only), as chat and legacy completions stream."""
    return b"data: " + orjson.dumps(data) + b"\n\n"
