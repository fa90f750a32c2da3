"""Legacy ``POST /v1/completions``: a prompt in, ``text_completion`` objects out (JSON and SSE).

The prompt becomes one user message of a chat request, so the call takes the same path as any
chat call; the answer's first choice comes back as ``text``. Policy: one prompt (a string or a
list of one string) and one choice per request; token-id prompts, ``n``/``best_of`` above 1,
``suffix`` and ``logprobs`` are refused with a clear 400 rather than answered differently from
what the caller asked.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.calls import Reply
from gateway.errors import GatewayError, InvalidRequest
from gateway.http.bodies import parse_json
from gateway.http.errors import error_body, sse_error_event
from gateway.requests import ChatRequest
from gateway.surface.base import Context, Translated, sse_data
from gateway.surface.chat_reading import read_chunk, read_completion

DONE = b"data: [DONE]\n\n"
# Fields that mean the same on both APIs and pass through unchanged.
SHARED = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "user",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "stream_options",
)


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` (the legacy API)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    best_of: Annotated[int, Field(ge=1, le=20)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, float] | None = None


def prompt_text(prompt: str | list[str] | list[int] | list[list[int]]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if prompt and all(isinstance(p, str) for p in prompt):
        raise InvalidRequest(
            "Only one prompt per request is supported; send one request per prompt.",
            param="prompt",
        )
    raise InvalidRequest("Token-id prompts are not supported; send text.", param="prompt")


def to_chat(request: CompletionRequest) -> ChatRequest:
    if (request.n or 1) > 1 or (request.best_of or 1) > 1:
        raise InvalidRequest("n and best_of above 1 are not supported here.", param="n")
    if request.suffix:
        raise InvalidRequest("suffix is not supported.", param="suffix")
    if request.logprobs:
        raise InvalidRequest("logprobs are not supported on /v1/completions.", param="logprobs")
    fields = request.model_dump(include=set(SHARED), exclude_unset=True)
    return ChatRequest.model_validate(
        {
            "model": request.model,
            "messages": [{"role": "user", "content": prompt_text(request.prompt)}],
            "stream": bool(request.stream),
            **fields,
        }
    )


class LegacyCompletions:
    """The ``/v1/completions`` surface."""

    name = "completions"
    accepts_x_api_key = False
    stream_tail = DONE

    async def translate(self, body: bytes, context: Context) -> Translated:
        request = parse_json(body, CompletionRequest)
        chat = to_chat(request)
        echo = prompt_text(request.prompt) if request.echo else ""
        return Translated(chat, bool(request.stream), echo)

    async def whole(self, translated: Translated, answer: bytes, reply: Reply) -> bytes:
        c = read_completion(answer)
        text = str(translated.state or "") + (c.text or "")
        usage = c.usage
        return orjson.dumps(
            {
                "id": new_id(),
                "object": "text_completion",
                "created": c.created,
                "model": c.model,
                "choices": [
                    {"text": text, "index": 0, "logprobs": None, "finish_reason": c.finish_reason}
                ],
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                },
            }
        )

    async def stream(self, translated: Translated, reply: Reply) -> AsyncIterator[bytes]:
        ident, created = new_id(), int(time.time())
        echo = str(translated.state or "")
        async for raw in reply.chunks:
            chunk = read_chunk(raw)
            base = {"id": ident, "object": "text_completion", "created": created}
            base["model"] = chunk.model
            if chunk.usage is not None and chunk.text is None and chunk.finish_reason is None:
                u = chunk.usage
                usage = {
                    "prompt_tokens": u.prompt_tokens,
                    "completion_tokens": u.completion_tokens,
                    "total_tokens": u.prompt_tokens + u.completion_tokens,
                }
                yield sse_data({**base, "choices": [], "usage": usage})
                continue
            text = (chunk.text or "") if not echo else echo + (chunk.text or "")
            echo = ""
            if not text and chunk.finish_reason is None:
                continue
            choice = {
                "text": text,
                "index": 0,
                "logprobs": None,
                "finish_reason": chunk.finish_reason,
            }
            yield sse_data({**base, "choices": [choice]})

    def error_body(self, err: GatewayError) -> bytes:
        return error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        return sse_error_event(err)


def new_id() -> str:
    return "cmpl-" + os.urandom(12).hex()
