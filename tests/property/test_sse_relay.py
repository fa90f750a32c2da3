"""The OpenAI provider's SSE relay: whatever way the network splits the bytes, the client gets
the same events, the usage is recorded, and a stream without [DONE] is an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.calls import ReplyStats
from gateway.errors import ProviderBadResponse
from gateway.rules import Target
from gateway.targets.openai_provider import OpenAIProvider
from gateway.targets.upstream import UpstreamPool


class SplitBody:
    """Stands in for an upstream Response: yields the body in the given pieces."""

    def __init__(self, body: bytes, cuts: list[int]) -> None:
        points = sorted({c % (len(body) + 1) for c in cuts})
        bounds = zip([0, *points], [*points, len(body)], strict=True)
        self._pieces = [body[a:b] for a, b in bounds if body[a:b]]
        self.closed = False

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece

    def close(self) -> None:
        self.closed = True


def sse(events: list[dict], done: bool = True, crlf: bool = False) -> bytes:
    sep = b"\r\n\r\n" if crlf else b"\n\n"
    body = b"".join(b"data: " + orjson.dumps(e) + sep for e in events)
    return body + (b"data: [DONE]" + sep if done else b"")


def chunk(text: str) -> dict:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }


USAGE = {
    "object": "chat.completion.chunk",
    "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 5},
}


def relay(
    body: bytes, cuts: list[int], wants_usage: bool
) -> tuple[list[bytes], ReplyStats, SplitBody]:
    provider = OpenAIProvider(
        "t",
        Target(provider="openai", model="m", api_base="http://127.0.0.1:1/v1"),
        UpstreamPool(),
        None,
    )
    stats = ReplyStats()
    response = SplitBody(body, cuts)

    async def run() -> list[bytes]:
        return [c async for c in provider._events(response, stats, wants_usage, 0.0)]  # type: ignore[arg-type]

    return asyncio.run(run()), stats, response


texts = st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@settings(max_examples=60, deadline=None)
@given(texts=texts, cuts=cuts, wants_usage=st.booleans(), crlf=st.booleans())
def test_relay_is_independent_of_network_splits(texts, cuts, wants_usage, crlf) -> None:
    events = [chunk(t) for t in texts] + [USAGE]
    got, stats, response = relay(sse(events, crlf=crlf), cuts, wants_usage)
    expected = [orjson.dumps(e) for e in events]
    assert got == (expected if wants_usage else expected[:-1])
    assert (stats.prompt_tokens, stats.completion_tokens) == (3, 5)
    assert response.closed


@settings(max_examples=30, deadline=None)
@given(texts=texts, cuts=cuts)
def test_a_stream_without_done_is_an_error(texts, cuts) -> None:
    with pytest.raises(ProviderBadResponse):
        relay(sse([chunk(t) for t in texts], done=False), cuts, False)


def test_an_error_event_fails_the_stream() -> None:
    from gateway.errors import ProviderUnavailable

    body = sse([chunk("a"), {"error": {"message": "overloaded"}}])
    with pytest.raises(ProviderUnavailable) as info:
        relay(body, [], False)
    # The provider's words are for operators (detail), the client gets ours (message).
    assert "overloaded" in info.value.detail and "overloaded" not in info.value.message


@pytest.mark.parametrize("crlf", [False, True])
def test_every_single_cut_point_gives_the_same_events(crlf: bool) -> None:
    """Exhaustive over one cut: includes a cut between the "\\r" and "\\n" of a separator."""
    events = [chunk("a"), chunk("bc"), USAGE]
    body = sse(events, crlf=crlf)
    expected = [orjson.dumps(e) for e in events]
    for cut in range(len(body) + 1):
        got, _, _ = relay(body, [cut], True)
        assert got == expected, cut
