"""Anthropic clients in: ``POST /v1/messages`` translated to chat completions (JSON and SSE).

The answer comes back in Anthropic's shapes: a ``message`` with ``text`` and ``tool_use`` blocks,
or the event stream ``message_start``, ``content_block_start`` / ``_delta`` / ``_stop`` per
block, ``message_delta`` (stop reason, usage) and ``message_stop``. Errors use Anthropic's
``{"type": "error", "error": {"type", "message"}}`` with the same HTTP status. The key is also
accepted as ``x-api-key`` (what the Anthropic SDK sends). ``message_start`` reports 0 input
tokens because the count is known only at the end; ``message_delta`` carries both counts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.calls import Reply
from gateway.errors import GatewayError
from gateway.http.bodies import parse_json
from gateway.surface.base import Context, Translated, sse
from gateway.surface.chat_reading import Usage, read_chunk, read_completion
from gateway.surface.messages_request import MessagesRequest, chat_body
from gateway.surface.responses import validated_chat

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def error_payload(err: GatewayError) -> dict[str, Any]:
    kind = ERROR_TYPES.get(err.status) or (
        "invalid_request_error" if err.status < 500 else "api_error"
    )
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def _input(arguments: str) -> Any:
    try:
        return orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
    }


class AnthropicMessages:
    """``POST /v1/messages``."""

    name = "messages"
    accepts_x_api_key = True
    stream_tail = b""

    async def translate(self, body: bytes, context: Context) -> Translated:
        request = parse_json(body, MessagesRequest)
        stream = bool(request.stream)
        return Translated(validated_chat(chat_body(request, stream)), stream, request.model)

    async def whole(self, translated: Translated, answer: bytes, reply: Reply) -> bytes:
        done = read_completion(answer)
        content: list[dict[str, Any]] = []
        if done.text:
            content.append({"type": "text", "text": done.text})
        for call in done.tool_calls:
            block = {"type": "tool_use", "id": call.id, "name": call.name}
            content.append(block | {"input": _input(call.arguments)})
        message = {
            "id": "msg_" + os.urandom(12).hex(),
            "type": "message",
            "role": "assistant",
            "model": done.model or str(translated.state),
            "content": content,
            "stop_reason": STOP_REASONS.get(done.finish_reason or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": _usage(done.usage),
        }
        return orjson.dumps(message)

    async def stream(self, translated: Translated, reply: Reply) -> AsyncIterator[bytes]:
        model = str(translated.state)
        started = False
        block = -1  # index of the open content block
        open_kind: str | None = None
        tool_blocks: dict[int, int] = {}  # chat tool-call index -> block index
        finish: str | None = None
        usage = Usage()
        async for raw in reply.chunks:
            chunk = read_chunk(raw)
            if not started:
                started = True
                message: dict[str, Any] = {
                    "id": "msg_" + os.urandom(12).hex(),
                    "type": "message",
                    "role": "assistant",
                    "model": chunk.model or model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": _usage(Usage()),
                }
                yield sse("message_start", {"type": "message_start", "message": message})
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
            if chunk.text is not None:
                if open_kind != "text":
                    if open_kind is not None:
                        yield _stop(block)
                    block += 1
                    open_kind = "text"
                    start = {"type": "text", "text": ""}
                    yield _start(block, start)
                delta = {"type": "text_delta", "text": chunk.text}
                yield _delta(block, delta)
            for tool in chunk.tools:
                if tool.index not in tool_blocks:
                    if open_kind is not None:
                        yield _stop(block)
                    block += 1
                    open_kind = "tool"
                    tool_blocks[tool.index] = block
                    start = {"type": "tool_use", "id": tool.id or "", "name": tool.name or ""}
                    yield _start(block, start | {"input": {}})
                if tool.arguments:
                    delta = {"type": "input_json_delta", "partial_json": tool.arguments}
                    yield _delta(tool_blocks[tool.index], delta)
        if open_kind is not None:
            yield _stop(block)
        stop_reason = STOP_REASONS.get(finish or "stop", "end_turn")
        ending = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": _usage(usage),
        }
        yield sse("message_delta", ending)
        yield sse("message_stop", {"type": "message_stop"})

    def error_body(self, err: GatewayError) -> bytes:
        return orjson.dumps(error_payload(err))

    def stream_error(self, err: GatewayError) -> bytes:
        return sse("error", error_payload(err))


def _start(index: int, block: dict[str, Any]) -> bytes:
    data = {"type": "content_block_start", "index": index, "content_block": block}
    return sse("content_block_start", data)


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    data = {"type": "content_block_delta", "index": index, "delta": delta}
    return sse("content_block_delta", data)


def _stop(index: int) -> bytes:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})
