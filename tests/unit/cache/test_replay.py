from __future__ import annotations

import orjson

from gateway.stages.exact_cache import directives
from gateway.stages.replay import StreamAssembler, completion_to_chunks

BODY = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
)


def test_round_trip_whole_to_stream_to_whole() -> None:
    chunks = completion_to_chunks(BODY, include_usage=True)
    assert orjson.loads(chunks[-1])["usage"]["completion_tokens"] == 2
    assembler = StreamAssembler()
    for c in chunks:
        assembler.add(c)
    rebuilt = orjson.loads(assembler.body())
    assert rebuilt["choices"][0]["message"]["content"] == "Hi there"
    assert rebuilt["choices"][0]["finish_reason"] == "stop"


def test_usage_chunk_only_when_asked() -> None:
    assert all(orjson.loads(c)["choices"] for c in completion_to_chunks(BODY, False))


def test_tool_call_streams_are_not_assembled() -> None:
    assembler = StreamAssembler()
    assembler.add(orjson.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [{}]}}]}))
    assembler.add(orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    assert assembler.body() is None


def test_unfinished_stream_is_not_assembled() -> None:
    assembler = StreamAssembler()
    assembler.add(orjson.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}))
    assert assembler.body() is None


def test_cache_control_directives() -> None:
    d = directives({"cache-control": "no-cache, no-store, max-age=30"})
    assert (d.lookup, d.store, d.max_age_s) == (False, False, 30.0)
    d = directives({"x-tiergate-cache-namespace": "exp-1"})
    assert (d.lookup, d.store, d.max_age_s, d.namespace) == (True, True, None, "exp-1")
