"""The Responses API surface (``POST /v1/responses``), translated to chat completions.

A request becomes a chat request (see ``responses_request``) that takes the whole pipeline; the
answer comes back as a ``response`` object or as Responses stream events (``responses_stream``).
With the store on (rules ``responses.enabled``, the request's ``store`` not false) the response
and its conversation are saved before the client sees the final answer or event, so its id can
be used as ``previous_response_id`` at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.calls import Reply
from gateway.errors import GatewayError, InvalidRequest
from gateway.http.bodies import parse_json
from gateway.http.errors import error_body
from gateway.requests import ChatRequest
from gateway.rules import dotted
from gateway.surface.base import Context, Translated, sse
from gateway.surface.chat_reading import read_completion
from gateway.surface.responses_objects import (
    Item,
    ResponseShape,
    assistant_message,
    output_items,
    status_of,
)
from gateway.surface.responses_request import ChatMessage, ResponsesRequest, chat_body
from gateway.surface.responses_store import ResponseStore, Stored
from gateway.surface.responses_stream import response_events


@dataclass(frozen=True, slots=True)
class _State:
    shape: ResponseShape
    conversation: list[ChatMessage]
    key_id: str
    ttl_s: float | None  # None: not stored


def validated_chat(body: dict[str, Any]) -> ChatRequest:
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = dotted(first["loc"])
        raise InvalidRequest(f"Invalid value for '{where}': {first['msg']}") from None


class ResponsesSurface:
    """``POST /v1/responses``."""

    name = "responses"
    accepts_x_api_key = False
    stream_tail = b""

    def __init__(self, store: ResponseStore) -> None:
        self._store = store

    async def translate(self, body: bytes, context: Context) -> Translated:
        request = parse_json(body, ResponsesRequest)
        policy = context.rules.responses
        store = self._store if policy.enabled else None
        key_id = context.principal.key_id
        history: list[ChatMessage] = []
        if request.previous_response_id:
            if store is None:
                raise InvalidRequest(
                    "previous_response_id needs the response store (rules: responses.enabled).",
                    param="previous_response_id",
                )
            previous = await store.get(
                key_id, request.previous_response_id, param="previous_response_id"
            )
            history = previous.conversation
        stream = bool(request.stream)
        chat, conversation = chat_body(request, history, stream)
        keep = store is not None and request.store is not False
        state = _State(
            ResponseShape.start(request, keep),
            conversation,
            key_id,
            policy.ttl_s if keep else None,
        )
        return Translated(validated_chat(chat), stream, state)

    async def whole(self, translated: Translated, answer: bytes, reply: Reply) -> bytes:
        state = translated.state
        assert isinstance(state, _State)
        done = read_completion(answer)
        items = output_items(done)
        status = status_of(done.finish_reason)
        obj = state.shape.object(status, done.model, items, done.usage, done.finish_reason)
        await self._finished(state, obj, items)
        return orjson.dumps(obj)

    def stream(self, translated: Translated, reply: Reply) -> AsyncIterator[bytes]:
        state = translated.state
        assert isinstance(state, _State)

        async def finished(obj: dict[str, Any], items: list[Item]) -> None:
            await self._finished(state, obj, items)

        return response_events(state.shape, reply.chunks, finished)

    async def _finished(self, state: _State, obj: dict[str, Any], items: list[Item]) -> None:
        if state.ttl_s is None:
            return
        conversation = [*state.conversation, assistant_message(items)]
        self._store.put(Stored(state.key_id, obj, conversation), state.ttl_s)

    def error_body(self, err: GatewayError) -> bytes:
        return error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        data = {
            "type": "error",
            "code": err.code,
            "message": err.message,
            "param": err.param,
            "sequence_number": 0,
        }
        return sse("error", data)
