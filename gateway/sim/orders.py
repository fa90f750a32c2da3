"""Completion requests read into format-neutral orders, remembered by their raw body.

Why a memo: the answer is a pure function of the body (see answers.py), and benchmarks and
demos send the same bodies again and again. Remembering the validated order, its answers and
the rendered body (all but id and timestamp) per body makes a repeated request cost a dict
lookup instead of validation, composition and JSON rendering. The memo is bounded (oldest
entry out first) and skips large bodies; errors are never remembered.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ValidationError

from gateway.sim.answers import Answer, Ask, Prompt, read_prompt
from gateway.sim.anthropic_format import ask_for_messages, messages_texts
from gateway.sim.anthropic_format import invalid_from as anthropic_invalid
from gateway.sim.bodies import ChatRequest, MessagesRequest
from gateway.sim.openai_format import ask_for_chat, chat_texts
from gateway.sim.openai_format import invalid_from as openai_invalid
from gateway.sim.provider_errors import ProviderError
from gateway.sim.wire import Completion, Events

MEMO_ENTRIES = 4096
MEMO_MAX_BODY_BYTES = 16 * 1024


class Order(NamedTuple):
    """A validated completion request, format-neutral."""

    model: str
    prompt: Prompt
    ask: Ask
    n: int = 1
    stream: bool = False
    top_logprobs: int | None = None
    include_usage: bool = False
    id_prefix: str = "chatcmpl-"
    call_prefix: str = "call_"


class Prepared:
    """A remembered order with what was derived from it so far (filled in lazily)."""

    __slots__ = ("answers", "events", "order", "rest", "tokens")

    def __init__(self, order: Order) -> None:
        self.order = order
        self.answers: tuple[Answer, ...] | None = None  # when no tool call ids are involved
        self.tokens = 0  # completion tokens of ``answers``
        self.rest: bytes | None = None  # the JSON body without id and timestamp
        self.events: tuple[Events, Completion] | None = None  # a stream and whom it was for


def read_chat(body: bytes) -> Order | ProviderError:
    try:
        request = ChatRequest.model_validate_json(body)
    except ValidationError as exc:
        return openai_invalid(exc)
    options = request.stream_options
    return Order(
        model=request.model,
        prompt=read_prompt(chat_texts(request.messages), request.seed),
        ask=ask_for_chat(request),
        n=request.n or 1,
        stream=bool(request.stream),
        top_logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        include_usage=options is not None and options.include_usage,
    )


def read_messages(body: bytes) -> Order | ProviderError:
    try:
        request = MessagesRequest.model_validate_json(body)
    except ValidationError as exc:
        return anthropic_invalid(exc)
    return Order(
        model=request.model,
        prompt=read_prompt(messages_texts(request), None),
        ask=ask_for_messages(request),
        stream=bool(request.stream),
        id_prefix="msg_",
        call_prefix="toolu_",
    )


class OrderMemo:
    """Bounded body -> Prepared memo for one endpoint; lives on the service object."""

    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self._entries = entries
        self._memo: dict[bytes, Prepared] = {}

    def get(self, body: bytes) -> Prepared | None:
        return self._memo.get(body) if len(body) <= MEMO_MAX_BODY_BYTES else None

    def put(self, body: bytes, order: Order) -> Prepared:
        prepared = Prepared(order)
        if self._entries > 0 and len(body) <= MEMO_MAX_BODY_BYTES:
            if len(self._memo) >= self._entries:
                del self._memo[next(iter(self._memo))]
            self._memo[body] = prepared
        return prepared
