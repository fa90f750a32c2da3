"""Anthropic Messages wire format: JSON and the SSE event sequence, errors, rate-limit headers.

Use ``AnthropicWire`` to render and ``ask_for_messages`` / ``messages_texts`` to read a
validated request. The stream follows the real order: message_start, content_block_start, ping,
content_block_delta..., content_block_stop, message_delta, message_stop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
from pydantic import ValidationError

from gateway.sim.answers import Answer, Ask, ToolSpec
from gateway.sim.bodies import AnthropicBlock, MessagesRequest
from gateway.sim.limits import anthropic_headers
from gateway.sim.protocol import Full
from gateway.sim.provider_errors import ProviderError, invalid_request
from gateway.sim.wire import Completion, Events, render_headers, retry_headers

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _block_text(content: str | list[AnthropicBlock] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if block.text is not None:
            parts.append(block.text)
        elif isinstance(block.content, str):
            parts.append(block.content)
        elif block.content is not None:
            parts.extend(part.text or "" for part in block.content)
    return "".join(parts)


def messages_texts(request: MessagesRequest) -> Iterator[tuple[str, str]]:
    if request.system is not None:
        yield "system", _block_text(request.system)
    for message in request.messages:
        yield message.role, _block_text(message.content)


def ask_for_messages(request: MessagesRequest) -> Ask:
    tool = None
    choice = request.tool_choice
    if request.tools and (choice is None or choice.type != "none"):
        named = choice.name if choice is not None and choice.type == "tool" else None
        chosen = next((t for t in request.tools if t.name == named), request.tools[0])
        tool = ToolSpec(chosen.name, chosen.input_schema)
    return Ask(cap=request.max_tokens, tool=tool)


def invalid_from(error: ValidationError) -> ProviderError:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return invalid_request("There was an issue with the request body: invalid JSON")
    where = ".".join(str(part) for part in first["loc"])
    return invalid_request(f"{where}: {first['msg']}", where)


def _event(name: bytes, data: dict[str, object]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _content(answer: Answer) -> list[dict[str, object]]:
    call = answer.tool_call
    if call is not None:
        tool_input = orjson.loads(call.arguments)
        return [{"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input}]
    return [{"type": "text", "text": answer.text}]


class AnthropicWire:
    """Renders answers and errors as the Anthropic Messages API does (first choice only)."""

    malformed_event = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{\n\n'
    )

    def error(self, err: ProviderError, extra: bytes = b"") -> Full:
        body = orjson.dumps(
            {
                "type": "error",
                "error": {
                    "type": err.anthropic_type,
                    "message": err.anthropic_message or err.message,
                },
            }
        )
        status = err.anthropic_status or err.status
        return Full(status, body, extra + retry_headers(err))

    def limit_headers(self, pairs: tuple[tuple[str, str], ...]) -> bytes:
        return render_headers(anthropic_headers(pairs, time.time()))

    def rest(self, completion: Completion) -> bytes:
        answer = completion.answers[0]
        return orjson.dumps(
            {
                "type": "message",
                "role": "assistant",
                "model": completion.model,
                "content": _content(answer),
                "stop_reason": STOP_REASONS[answer.finish],
                "stop_sequence": None,
                "usage": {
                    "input_tokens": completion.prompt_tokens,
                    "output_tokens": answer.tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }
        )

    def stamp(self, completion: Completion, rest: bytes) -> bytes:
        return b'{"id":"%s",%s' % (completion.id.encode(), rest[1:])

    def restamp(self, events: Events, old: Completion, new: Completion) -> Events:
        # Only message_start (in the head) carries the id.
        head = events.head.replace(b'"id":"%s"' % old.id.encode(), b'"id":"%s"' % new.id.encode())
        return Events(head, events.steps, events.tail)

    def events(self, completion: Completion) -> Events:
        answer = completion.answers[0]
        message: dict[str, object] = {
            "id": completion.id,
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": completion.prompt_tokens, "output_tokens": 1},
        }
        call = answer.tool_call
        if call is not None:
            block: dict[str, object] = {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": {},
            }
            deltas = [{"type": "input_json_delta", "partial_json": call.arguments}]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in answer.pieces]
        head = b"".join(
            (
                _event(b"message_start", {"type": "message_start", "message": message}),
                _event(
                    b"content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                ),
                _event(b"ping", {"type": "ping"}),
            )
        )
        steps = tuple(
            _event(b"content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
            for d in deltas
        )
        stop = {"stop_reason": STOP_REASONS[answer.finish], "stop_sequence": None}
        tail = b"".join(
            (
                _event(b"content_block_stop", {"type": "content_block_stop", "index": 0}),
                _event(
                    b"message_delta",
                    {
                        "type": "message_delta",
                        "delta": stop,
                        "usage": {"output_tokens": answer.tokens},
                    },
                ),
                _event(b"message_stop", {"type": "message_stop"}),
            )
        )
        return Events(head, steps, tail)
