"""Any chat stream, translated to Responses events, numbers its events without gaps, closes
every item it opens, and ends with a response whose output holds exactly the streamed text and
tool-call arguments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.surface.responses_objects import ResponseShape
from gateway.surface.responses_request import ResponsesRequest
from gateway.surface.responses_stream import response_events

text_piece = st.text(alphabet="abc xyz", min_size=1, max_size=5).map(lambda t: ("text", t))
tool_piece = st.tuples(st.integers(0, 2), st.text(alphabet='{}":ab1', max_size=4)).map(
    lambda p: ("tool", p)
)


def chunk(piece: tuple[str, object]) -> bytes:
    kind, value = piece
    if kind == "text":
        delta: dict[str, object] = {"content": value}
    else:
        index, arguments = value  # type: ignore[misc]
        call = {"index": index, "id": f"c{index}", "function": {"name": f"f{index}"}}
        call["function"]["arguments"] = arguments  # type: ignore[index]
        delta = {"tool_calls": [call]}
    return orjson.dumps({"model": "m", "choices": [{"index": 0, "delta": delta}]})


async def of(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def run(pieces: list[tuple[str, object]]) -> list[dict]:
    request = ResponsesRequest.model_validate({"model": "fast", "input": "hi"})

    async def finished(obj: dict, items: list) -> None:
        return None

    async def collect() -> list[bytes]:
        stream = response_events(
            ResponseShape.start(request, False), of([chunk(p) for p in pieces]), finished
        )
        return [frame async for frame in stream]

    frames = asyncio.run(collect())
    return [orjson.loads(f.decode().split("\ndata: ", 1)[1]) for f in frames]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(text_piece, tool_piece), max_size=12))
def test_stream_translation(pieces: list[tuple[str, object]]) -> None:
    events = run(pieces)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed"
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
    assert sorted(added) == sorted(done)
    output = events[-1]["response"]["output"]
    # Every text piece lands in a message item, in order (text after a tool call opens a new one).
    streamed_text = "".join(v for k, v in pieces if k == "text")
    final_text = "".join(
        part["text"] for item in output if item["type"] == "message" for part in item["content"]
    )
    assert final_text == streamed_text
    for index in {v[0] for k, v in pieces if k == "tool"}:  # type: ignore[index]
        arguments = "".join(v[1] for k, v in pieces if k == "tool" and v[0] == index)  # type: ignore[index]
        item = next(
            i for i in output if i["type"] == "function_call" and i["call_id"] == f"c{index}"
        )
        assert item["arguments"] == arguments and item["status"] == "completed"
