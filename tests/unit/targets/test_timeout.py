from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.calls import Call, Reply, ReplyStats
from gateway.errors import ProviderTimeout
from gateway.targets.timeout import Timeout


async def slow_chunks(delays: list[float], closed: list[bool]) -> AsyncIterator[bytes]:
    try:
        for i, delay in enumerate(delays):
            await asyncio.sleep(delay)
            yield str(i).encode()
    finally:
        closed.append(True)


@pytest.mark.asyncio
async def test_no_first_chunk_before_the_first_token_deadline(make_call) -> None:
    closed: list[bool] = []

    async def next_(call: Call) -> Reply:
        return Reply(chunks=slow_chunks([5.0], closed), stats=ReplyStats())

    reply = await Timeout("t", first_token_s=0.05, total_s=10)(make_call(stream=True), next_)
    with pytest.raises(ProviderTimeout):
        await anext(reply.chunks)
    assert closed == [True]


@pytest.mark.asyncio
async def test_total_deadline_bounds_a_stalled_stream(make_call) -> None:
    closed: list[bool] = []

    async def next_(call: Call) -> Reply:
        return Reply(chunks=slow_chunks([0, 0, 5.0], closed), stats=ReplyStats())

    reply = await Timeout("t", first_token_s=1, total_s=0.1)(make_call(stream=True), next_)
    got = []
    with pytest.raises(ProviderTimeout):
        async for chunk in reply.chunks:
            got.append(chunk)
    assert got == [b"0", b"1"]
    assert closed == [True]


@pytest.mark.asyncio
async def test_hanging_provider_call_times_out(make_call) -> None:
    async def next_(call: Call) -> Reply:
        await asyncio.sleep(5)
        raise AssertionError("unreachable")

    with pytest.raises(ProviderTimeout):
        await Timeout("t", first_token_s=0.05, total_s=0.05)(make_call(), next_)


@pytest.mark.asyncio
async def test_fast_answers_pass_untouched(make_call) -> None:
    closed: list[bool] = []

    async def next_(call: Call) -> Reply:
        return Reply(chunks=slow_chunks([0, 0], closed), stats=ReplyStats())

    reply = await Timeout("t", first_token_s=1, total_s=1)(make_call(stream=True), next_)
    assert [c async for c in reply.chunks] == [b"0", b"1"]
