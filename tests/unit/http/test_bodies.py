"""The body parser: every input is a typed request or a 4xx GatewayError, never another
exception (inputs here were found by ``python -m bench.fuzz``)."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.http.bodies import MAX_DEPTH, parse_json
from gateway.requests import ChatRequest, EmbeddingsRequest

FOUND = [
    # a tool whose name is an object, and a tool_choice naming a function: TypeError before
    b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": '
    b'"function", "function": {"name": {}}}], "tool_choice": {"type": "function", "function": '
    b'{"name": "f"}}}',
    b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], "tool_choice": '
    b'{"function": []}}',
    b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], "x": '
    + b"[" * (MAX_DEPTH + 1)
    + b"]" * (MAX_DEPTH + 1)
    + b"}",
    b"[" * 1000 + b"]" * 1000,
]


@pytest.mark.parametrize("body", FOUND)
def test_found_inputs_are_clean_4xx(body: bytes) -> None:
    for model in (ChatRequest, EmbeddingsRequest):
        with pytest.raises(GatewayError) as info:
            parse_json(body, model)
        assert 400 <= info.value.status < 500


@pytest.mark.parametrize(
    "chunk", [b'{"choices": [1]}', b'{"choices": 5}', b"[1]", b'{"choices": [{"delta": 3}]}']
)
def test_the_stream_assembler_gives_up_on_odd_chunks_instead_of_raising(chunk: bytes) -> None:
    from gateway.stages.replay import StreamAssembler

    assembler = StreamAssembler()
    assembler.add(chunk)
    assert assembler.body() is None
