from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.calls import Call, CallKind, Principal, Reply, ReplyStats
from gateway.errors import ProviderRateLimited, ProviderUnavailable, TargetThrottled
from gateway.requests import EmbeddingsRequest
from gateway.rules import TargetLimits
from gateway.targets.throttle import (
    Throttle,
    UpstreamLimits,
    estimate_tokens,
    parse_duration_s,
    read_limits,
)


async def chunks_of(*items: bytes | Exception) -> AsyncIterator[bytes]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ok(*headers: tuple[str, str]):
    calls: list[Call] = []

    async def next_(call: Call) -> Reply:
        calls.append(call)
        return Reply(chunks_of(b"x"), ReplyStats(), headers=tuple(headers))

    next_.calls = calls  # type: ignore[attr-defined]
    return next_


def raising(exc: Exception):
    async def next_(call: Call) -> Reply:
        raise exc

    return next_


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("0.5s", 0.5),
        ("1h2m3s", 3723.0),
        ("30", 30.0),
        ("1.5", 1.5),
        (" 2s ", 2.0),
        ("", None),
        ("soon", None),
        ("5x", None),
        ("1s garbage", None),
        ("-1", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    got = parse_duration_s(text)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_read_limits() -> None:
    seen = read_limits(
        (
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "1234"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-reset-tokens", "20ms"),
            ("retry-after", "bogus"),
        )
    )
    assert seen == UpstreamLimits(0, 1234, 360.0, pytest.approx(0.02), None)
    assert read_limits(()) == UpstreamLimits()


def test_estimate_tokens_chat(make_call) -> None:
    call = make_call(
        messages=[
            {"role": "system", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 41}, {"type": "image"}]},
        ],
        max_tokens=100,
    )
    assert estimate_tokens(call) == 10 + 11 + 2 * 4 + 100
    assert estimate_tokens(make_call()) == 1 + 4 + 256  # "hi", no output cap
    assert estimate_tokens(make_call(max_completion_tokens=10, n=3)) == 1 + 4 + 30


def test_estimate_tokens_embeddings() -> None:
    def call(given: object) -> Call:
        request = EmbeddingsRequest.model_validate({"model": "e", "input": given})
        return Call("r", Principal("k", "t", None), CallKind.EMBEDDINGS, "e", request, 0, "v")

    assert estimate_tokens(call("a" * 8)) == 2
    assert estimate_tokens(call(["a" * 5, "b"])) == 3
    assert estimate_tokens(call([1, 2, 3])) == 3
    assert estimate_tokens(call([[1, 2], [3]])) == 3


@pytest.mark.asyncio
async def test_no_limits_passes_everything(make_call) -> None:
    stage = Throttle("t", TargetLimits(), Clock())
    for _ in range(100):
        reply = await stage(make_call(), ok())
        assert [c async for c in reply.chunks] == [b"x"]


@pytest.mark.asyncio
async def test_rpm_bucket_refuses_then_refills(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(rpm=3), clock)
    next_ = ok()
    for _ in range(3):
        await stage(make_call(), next_)
    with pytest.raises(TargetThrottled) as info:
        await stage(make_call(), next_)
    assert len(next_.calls) == 3
    assert info.value.retry_after_s == pytest.approx(20.0)  # 3 per minute: one per 20 s
    assert info.value.status == 429
    assert info.value.code == "target_at_capacity"
    assert info.value.type == "rate_limit_error"
    clock.now += 20.0
    await stage(make_call(), next_)


@pytest.mark.asyncio
async def test_tpm_bucket_counts_estimated_tokens(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(rpm=1000, tpm=600), clock)
    call = make_call(max_tokens=295)  # 1 + 4 + 295 = 300 tokens
    await stage(call, ok())
    await stage(call, ok())
    with pytest.raises(TargetThrottled) as info:
        await stage(call, ok())
    assert "tokens-per-minute" in info.value.message
    assert info.value.retry_after_s == pytest.approx(30.0)  # 300 tokens at 10/s
    # A refused request took nothing from the RPM bucket either.
    clock.now += 30.0
    await stage(call, ok())


@pytest.mark.asyncio
async def test_upstream_429_blocks_for_retry_after(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(), clock)
    with pytest.raises(ProviderRateLimited):
        await stage(make_call(), raising(ProviderRateLimited("slow down", retry_after_s=7)))
    clock.now += 6.0
    next_ = ok()
    with pytest.raises(TargetThrottled) as info:
        await stage(make_call(), next_)
    assert not next_.calls
    assert info.value.retry_after_s == pytest.approx(1.0)
    clock.now += 1.0
    await stage(make_call(), next_)
    assert len(next_.calls) == 1


@pytest.mark.asyncio
async def test_upstream_429_without_retry_after_blocks_one_second(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(), clock)
    with pytest.raises(ProviderRateLimited):
        await stage(make_call(), raising(ProviderRateLimited("slow down")))
    assert stage.blocked_until == clock.now + 1.0


@pytest.mark.asyncio
async def test_429_in_the_stream_before_the_first_chunk_blocks(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(), clock)

    async def next_(call: Call) -> Reply:
        return Reply(chunks_of(ProviderRateLimited("429", retry_after_s=3)), ReplyStats())

    reply = await stage(make_call(stream=True), next_)
    with pytest.raises(ProviderRateLimited):
        await anext(reply.chunks)
    assert stage.blocked_until == clock.now + 3.0


@pytest.mark.asyncio
async def test_a_whole_answer_is_passed_on_unwrapped(make_call) -> None:
    answer = Reply(chunks_of(b"x"), ReplyStats())

    async def next_(call: Call) -> Reply:
        return answer

    assert await Throttle("t", TargetLimits(), Clock())(make_call(), next_) is answer


@pytest.mark.asyncio
async def test_other_errors_do_not_block(make_call) -> None:
    stage = Throttle("t", TargetLimits(), Clock())
    with pytest.raises(ProviderUnavailable):
        await stage(make_call(), raising(ProviderUnavailable("down")))
    assert stage.blocked_until == 0.0


@pytest.mark.asyncio
async def test_headers_with_nothing_left_block_until_reset(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(), clock)
    await stage(
        make_call(),
        ok(
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ),
    )
    assert stage.blocked_until == clock.now + 360.0


@pytest.mark.asyncio
async def test_headers_tighten_but_never_loosen_the_buckets(make_call) -> None:
    clock = Clock()
    stage = Throttle("t", TargetLimits(rpm=60), clock)
    await stage(make_call(), ok(("x-ratelimit-remaining-requests", "1")))
    await stage(make_call(), ok(("x-ratelimit-remaining-requests", "5000")))
    with pytest.raises(TargetThrottled):
        await stage(make_call(), ok())
    clock.now += 1.0  # 1 request a second
    await stage(make_call(), ok())


@pytest.mark.asyncio
async def test_headroom_is_the_free_share_of_the_tighter_bucket(make_call) -> None:
    clock = Clock()
    assert Throttle("free", TargetLimits(), clock).headroom() == 1.0
    throttle = Throttle("t", TargetLimits(rpm=10), clock)
    next_ = ok()
    for _ in range(8):
        await throttle(make_call(), next_)
    assert throttle.headroom() == pytest.approx(0.2)
    clock.now += 6.0  # refills 1 request (10 per minute)
    assert throttle.headroom() == pytest.approx(0.3)
    throttle.block(clock.now + 1.0, "told to wait")
    assert throttle.headroom() == 0.0
