"""The batch input file checks: every rule, with the line number it names."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.jobs.lines import InvalidLine, endpoint_problems, parse_batch_file


def line(custom_id: object = "r1", **over: object) -> bytes:
    data: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
    }
    data.update(over)
    return orjson.dumps(data)


def test_valid_file_keeps_order_ids_and_line_numbers() -> None:
    data = line("a") + b"\n\n" + line("b", url="/v1/embeddings") + b"\n"
    lines = parse_batch_file(data, 100)
    assert [(x.index, x.line, x.custom_id, x.url) for x in lines] == [
        (0, 1, "a", "/v1/chat/completions"),
        (1, 3, "b", "/v1/embeddings"),
    ]
    assert lines[0].body["model"] == "fast"


def deep_line() -> bytes:
    nested: list[object] = []
    for _ in range(80):
        nested = [nested]
    return line("deep", body={"model": "fast", "messages": nested})


@pytest.mark.parametrize(
    ("bad", "words", "param"),
    [
        (b"{not json", "not valid JSON", None),
        (b"[1, 2]", "must be a JSON object", None),
        (line(None), "'custom_id' must be a non-empty string", "custom_id"),
        (line(""), "'custom_id' must be a non-empty string", "custom_id"),
        (line("x" * 513), "over 512 characters", None),
        (line("dup"), "duplicate custom_id 'dup'", "custom_id"),
        (line("m", method="GET"), "'method' must be", "method"),
        (line("u", url="/v1/moderations"), "'url' must be", "url"),
        (line("b", body="hello"), "'body' must be a JSON object", "body"),
        (line("s", body={"model": "fast", "stream": True}), "not supported", "body.stream"),
        (line("e", extra=1), "unknown field(s): extra", None),
        (deep_line(), "nested deeper", "body"),
    ],
)
def test_bad_second_line_is_named(bad: bytes, words: str, param: str | None) -> None:
    with pytest.raises(InvalidLine) as caught:
        parse_batch_file(line("dup") + b"\n" + bad + b"\n", 100)
    err = caught.value
    assert err.line == 2
    assert err.message.startswith("Line 2: ")
    assert words in err.message
    assert err.param == param
    assert err.status == 400


def test_too_many_lines() -> None:
    data = b"\n".join(line(f"r{i}") for i in range(4))
    with pytest.raises(InvalidLine, match="at most 3 requests"):
        parse_batch_file(data, 3)


@pytest.mark.parametrize("data", [b"", b"\n \n", b"\xff\xfe"])
def test_empty_or_not_text(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_batch_file(data, 10)


def test_endpoint_mismatch_names_lines() -> None:
    lines = parse_batch_file(line("a") + b"\n" + line("b", url="/v1/embeddings"), 10)
    assert endpoint_problems(lines, "/v1/chat/completions") == [
        {
            "code": "mismatched_endpoint",
            "line": 2,
            "message": "The line's url /v1/embeddings is not the batch's endpoint "
            "/v1/chat/completions.",
            "param": "url",
        }
    ]
    assert endpoint_problems(lines[:1], "/v1/chat/completions") == []
