"""Responses and Anthropic requests to chat, and chat streams to Responses / Anthropic events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.calls import Reply, ReplyStats
from gateway.errors import InvalidRequest
from gateway.surface.base import Translated
from gateway.surface.messages import AnthropicMessages
from gateway.surface.messages_request import MessagesRequest
from gateway.surface.messages_request import chat_body as messages_chat_body
from gateway.surface.responses_objects import ResponseShape
from gateway.surface.responses_request import ResponsesRequest, chat_body, input_messages
from gateway.surface.responses_stream import response_events


def chunk(**delta: object) -> bytes:
    finish = delta.pop("finish", None)
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return orjson.dumps({"object": "chat.completion.chunk", "model": "m", "choices": [choice]})


def usage_chunk(prompt: int, completion: int) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return orjson.dumps({"model": "m", "choices": [], "usage": usage})


async def of(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def parse(frames: list[bytes]) -> list[tuple[str, dict]]:
    out = []
    for frame in frames:
        head, data = frame.decode().strip().split("\n")
        out.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


def test_input_items_to_chat() -> None:
    items = [
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {"type": "reasoning", "summary": []},
    ]
    messages = input_messages(items)
    assert messages[0] == {"role": "system", "content": "rules"}
    assert messages[1] == {"role": "user", "content": "hi"}
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["c1", "c2"]  # grouped: one turn
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_responses_body_fields() -> None:
    request = ResponsesRequest.model_validate(
        {
            "model": "fast",
            "input": "hi",
            "instructions": "be brief",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "max_output_tokens": 5,
        }
    )
    body, conversation = chat_body(request, [{"role": "user", "content": "before"}], stream=True)
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert conversation == [
        {"role": "user", "content": "before"},
        {"role": "user", "content": "hi"},
    ]
    assert body["tools"][0]["function"]["name"] == "f"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["response_format"]["json_schema"]["name"] == "x"
    assert body["max_completion_tokens"] == 5
    assert body["stream_options"] == {"include_usage": True}


def test_responses_refuses_what_chat_cannot_do() -> None:
    with pytest.raises(InvalidRequest) as info:
        input_messages([{"type": "item_reference", "id": "x"}])
    assert info.value.param == "input[0]"
    request = ResponsesRequest.model_validate(
        {"model": "fast", "input": "hi", "tools": [{"type": "web_search"}]}
    )
    with pytest.raises(InvalidRequest):
        chat_body(request, [], stream=False)


@pytest.mark.asyncio
async def test_response_events_text_then_tools() -> None:
    request = ResponsesRequest.model_validate({"model": "fast", "input": "hi"})
    shape = ResponseShape.start(request, store=False)
    stored: list[dict] = []

    async def finished(obj: dict, items: list) -> None:
        stored.append(obj)

    tool = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    second = {"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}
    frames = [
        f
        async for f in response_events(
            shape,
            of(
                chunk(content="Hel"),
                chunk(content="lo"),
                chunk(tool_calls=[tool]),
                chunk(tool_calls=[more, second]),
                chunk(finish="tool_calls"),
                usage_chunk(7, 9),
            ),
            finished,
        )
    ]
    events = parse(frames)
    kinds = [k for k, _ in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][1]["arguments"] == '{"a": 1}'
    assert final["usage"]["input_tokens"] == 7 and final["usage"]["output_tokens"] == 9
    # The message item is closed before the first tool call opens.
    assert kinds.index("response.output_text.done") < kinds.index(
        "response.function_call_arguments.delta"
    )
    assert stored == [final]


@pytest.mark.asyncio
async def test_response_events_incomplete_at_the_cap() -> None:
    request = ResponsesRequest.model_validate({"model": "fast", "input": "hi"})
    shape = ResponseShape.start(request, store=False)

    async def finished(obj: dict, items: list) -> None:
        return None

    frames = [
        f
        async for f in response_events(
            shape, of(chunk(content="a"), chunk(finish="length")), finished
        )
    ]
    kind, data = parse(frames)[-1]
    assert kind == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_messages_to_chat() -> None:
    request = MessagesRequest.model_validate(
        {
            "model": "fast",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "checking"},
                        {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "x"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},
            "stop_sequences": ["END"],
        }
    )
    body = messages_chat_body(request, stream=False)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"city":"x"}'
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "sunny"}
    assert body["tool_choice"] == "required" and body["stop"] == ["END"]


@pytest.mark.asyncio
async def test_anthropic_stream_events() -> None:
    surface = AnthropicMessages()
    tool = {"index": 0, "id": "t1", "function": {"name": "w", "arguments": '{"c":1}'}}
    reply = Reply(
        of(
            chunk(content="Hi"),
            chunk(tool_calls=[tool]),
            chunk(finish="tool_calls"),
            usage_chunk(4, 6),
        ),
        ReplyStats(),
    )
    translated = Translated(None, True, "fast")  # type: ignore[arg-type]
    events = parse([f async for f in surface.stream(translated, reply)])
    kinds = [k for k, _ in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[4][1]["content_block"]["type"] == "tool_use"
    assert events[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"c":1}'}
    assert events[7][1]["delta"]["stop_reason"] == "tool_use"
    assert events[7][1]["usage"]["output_tokens"] == 6
