"""OpenAI wire format: chat completions (JSON and SSE), embeddings, models, errors.

Use ``OpenAIWire`` to render; ``ask_for_chat`` and ``chat_texts`` read a validated request.
Stream chunks are built from per-request byte templates rather than one dict per chunk, which
keeps streaming cheap when the sim runs at full speed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
from pydantic import ValidationError

from gateway.sim.answers import VOCABULARY, Answer, Ask, ToolSpec
from gateway.sim.bodies import ChatMessage, ChatRequest
from gateway.sim.protocol import Full
from gateway.sim.provider_errors import ProviderError, invalid_request
from gateway.sim.tool_turns import calls_a_tool
from gateway.sim.wire import Completion, Events, render_headers, retry_headers

FINGERPRINT = "fp_tiergate_sim"
DONE = b"data: [DONE]\n\n"


def chat_texts(messages: Sequence[ChatMessage]) -> Iterator[tuple[str, str]]:
    for message in messages:
        content = message.content
        if isinstance(content, str):
            yield message.role, content
        elif content is None:
            yield message.role, ""
        else:
            yield message.role, "".join(part.text or "" for part in content)


def ask_for_chat(request: ChatRequest) -> Ask:
    """What the request wants, format-neutral: cap, JSON mode, which tool to call."""
    cap = request.max_completion_tokens or request.max_tokens
    tool = None
    if request.tools and calls_a_tool(request.messages, request.tool_choice):
        choice = request.tool_choice
        named = choice.function.name if choice is not None and not isinstance(choice, str) else None
        chosen = next((t for t in request.tools if t.function.name == named), request.tools[0])
        tool = ToolSpec(chosen.function.name, chosen.function.parameters)
    fmt = request.response_format
    json_mode = fmt is not None and fmt.type != "text"
    schema = fmt.json_schema.schema_ if fmt is not None and fmt.json_schema is not None else None
    return Ask(cap=cap, json_mode=json_mode, json_schema=schema, tool=tool)


def invalid_from(error: ValidationError) -> ProviderError:
    """An OpenAI-style 400 for the first problem pydantic found."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    param = ".".join(loc) or None
    if first["type"] == "json_invalid":
        return invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        )
    if first["type"] == "missing" and loc == ["model"]:
        return invalid_request("you must provide a model parameter")
    if first["type"] == "missing":
        return invalid_request(
            f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
        )
    return invalid_request(f"Invalid value for '{param}': {first['msg']}", param, "invalid_value")


def _logprobs(pieces: Sequence[str], logprob: float, top: int) -> dict[str, object]:
    content = []
    for position, piece in enumerate(pieces):
        raw = list(piece.encode())
        alternatives = [{"token": piece, "logprob": logprob, "bytes": raw}]
        for rank in range(1, top):
            word = " " + VOCABULARY[(position + rank * 13) % len(VOCABULARY)]
            alternatives.append(
                {"token": word, "logprob": logprob - 1.5 * rank, "bytes": list(word.encode())}
            )
        content.append(
            {"token": piece, "logprob": logprob, "bytes": raw, "top_logprobs": alternatives[:top]}
        )
    return {"content": content, "refusal": None}


def _tool_calls(answer: Answer) -> list[dict[str, object]] | None:
    call = answer.tool_call
    if call is None:
        return None
    function = {"name": call.name, "arguments": call.arguments}
    return [{"id": call.id, "type": "function", "function": function}]


def _message(answer: Answer) -> dict[str, object]:
    calls = _tool_calls(answer)
    if calls is not None:
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
    return {"role": "assistant", "content": answer.text, "refusal": None}


def _usage(completion: Completion) -> dict[str, int]:
    done = completion.completion_tokens
    prompt = completion.prompt_tokens
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _stamp(completion: Completion) -> bytes:
    """The part of every stream chunk that changes per request (see ``events``)."""
    return b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,' % (
        completion.id.encode(),
        completion.created,
    )


class OpenAIWire:
    """Renders answers and errors as the OpenAI API does."""

    malformed_event = (
        b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":\n\n'
    )

    def error(self, err: ProviderError, extra: bytes = b"") -> Full:
        body = orjson.dumps(
            {
                "error": {
                    "message": err.message,
                    "type": err.openai_type,
                    "param": err.openai_param,
                    "code": err.openai_code,
                }
            }
        )
        return Full(err.status, body, extra + retry_headers(err))

    def limit_headers(self, pairs: tuple[tuple[str, str], ...]) -> bytes:
        return render_headers(pairs)

    def rest(self, completion: Completion) -> bytes:
        top = completion.top_logprobs
        choices = [
            {
                "index": index,
                "message": _message(answer),
                "logprobs": None
                if top is None or answer.tool_call is not None
                else _logprobs(answer.pieces, completion.logprob, top),
                "finish_reason": answer.finish,
            }
            for index, answer in enumerate(completion.answers)
        ]
        return orjson.dumps(
            {
                "object": "chat.completion",
                "model": completion.model,
                "system_fingerprint": FINGERPRINT,
                "choices": choices,
                "usage": _usage(completion),
            }
        )

    def stamp(self, completion: Completion, rest: bytes) -> bytes:
        # ids are [A-Za-z0-9_-]: no JSON escaping needed.
        return b'{"id":"%s","created":%d,%s' % (
            completion.id.encode(),
            completion.created,
            rest[1:],
        )

    def restamp(self, events: Events, old: Completion, new: Completion) -> Events:
        if old.id == new.id and old.created == new.created:
            return events
        before, after = _stamp(old), _stamp(new)
        return Events(
            events.head.replace(before, after),
            tuple(step.replace(before, after) for step in events.steps),
            events.tail.replace(before, after),
        )

    def events(self, completion: Completion) -> Events:
        envelope = orjson.dumps(
            {
                "id": completion.id,
                "object": "chat.completion.chunk",
                "created": completion.created,
                "model": completion.model,
                "system_fingerprint": FINGERPRINT,
            }
        )
        prefix = b"data: " + envelope[:-1] + b',"choices":[{"index":'
        usage_null = b',"usage":null' if completion.include_usage else b""
        end = b"]" + usage_null + b"}\n\n"

        def event(
            index: int, delta: object, logprobs: object = None, finish: object = None
        ) -> bytes:
            rest = orjson.dumps({"delta": delta, "logprobs": logprobs, "finish_reason": finish})
            return b"%s%d,%s%s" % (prefix, index, rest[1:], end)

        head, tail, columns = [], [], []
        top = completion.top_logprobs
        for index, answer in enumerate(completion.answers):
            call = answer.tool_call
            if call is not None:
                function = {"name": call.name, "arguments": ""}
                opening = {"index": 0, "id": call.id, "type": "function", "function": function}
                delta = {"role": "assistant", "content": None, "tool_calls": [opening]}
                head.append(event(index, delta))
                args = {"index": 0, "function": {"arguments": call.arguments}}
                columns.append([event(index, {"tool_calls": [args]})])
            else:
                head.append(event(index, {"role": "assistant", "content": "", "refusal": None}))
                columns.append(
                    [
                        event(
                            index,
                            {"content": piece},
                            None if top is None else _logprobs((piece,), completion.logprob, top),
                        )
                        for piece in answer.pieces
                    ]
                )
            tail.append(event(index, {}, None, answer.finish))
        if completion.include_usage:
            usage = orjson.dumps(_usage(completion))
            tail.append(b"data: " + envelope[:-1] + b',"choices":[],"usage":' + usage + b"}\n\n")
        tail.append(DONE)
        depth = max((len(column) for column in columns), default=0)
        steps = tuple(
            b"".join(column[position] for column in columns if position < len(column))
            for position in range(depth)
        )
        return Events(b"".join(head), steps, b"".join(tail))


def embeddings_body(model: str, vectors: Sequence[list[float] | str], prompt_tokens: int) -> bytes:
    data = [
        {"object": "embedding", "index": index, "embedding": value}
        for index, value in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


def models_body(names: Sequence[str], owners: Sequence[str]) -> bytes:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": owner}
        for name, owner in zip(names, owners, strict=True)
    ]
    return orjson.dumps({"object": "list", "data": data})
