from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.calls import Call, Reply, ReplyStats
from gateway.errors import (
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    TargetEjected,
    TargetThrottled,
    UpstreamRejected,
)
from gateway.rules import Breaker as Policy
from gateway.targets.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerState
from gateway.targets.ejection import Ejection


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup(**policy: object) -> tuple[Ejection, Breaker, Clock, list[tuple[str, str, str, str]]]:
    fields = {"min_calls": 100, "consecutive_failures": 2, "open_s": 5.0} | policy
    breaker = Breaker(Policy.model_validate(fields))
    clock = Clock()
    seen: list[tuple[str, str, str, str]] = []

    def on_transition(target: str, old: BreakerState, new: BreakerState, why: str) -> None:
        seen.append((target, old, new, why))

    return Ejection("t", breaker, clock, on_transition), breaker, clock, seen


def answering(reply_or_error: Reply | Exception):
    calls: list[Call] = []

    async def next_(call: Call) -> Reply:
        calls.append(call)
        if isinstance(reply_or_error, Exception):
            raise reply_or_error
        return reply_or_error

    next_.calls = calls  # type: ignore[attr-defined]
    return next_


async def drain(reply: Reply) -> list[bytes]:
    return [c async for c in reply.chunks]


async def fail(stage: Ejection, call: Call, exc: Exception) -> None:
    with pytest.raises(type(exc)):
        await stage(call, answering(exc))


@pytest.mark.asyncio
async def test_success_is_recorded_at_the_first_chunk(make_call, make_reply) -> None:
    stage, breaker, _, _ = setup()
    reply = await stage(make_call(), answering(make_reply(b"a", b"b")))
    assert breaker.snapshot(100.0).calls == 0  # headers only: no verdict yet
    assert await drain(reply) == [b"a", b"b"]
    assert (breaker.snapshot(100.0).calls, breaker.snapshot(100.0).failures) == (1, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "exc", [ProviderUnavailable("x"), ProviderTimeout("x"), ProviderBadResponse("x")]
)
async def test_health_failures_open_the_breaker(make_call, exc) -> None:
    stage, breaker, _, seen = setup()
    await fail(stage, make_call(), exc)
    await fail(stage, make_call(), exc)
    assert breaker.state is OPEN
    assert seen == [("t", CLOSED, OPEN, "2 consecutive failures")]


@pytest.mark.asyncio
async def test_open_breaker_refuses_without_calling_upstream(make_call, make_reply) -> None:
    stage, breaker, clock, _ = setup()
    breaker.eject(clock.now, clock.now + 3.0, "manual")
    next_ = answering(make_reply(b"a"))
    clock.now += 1.0
    with pytest.raises(TargetEjected) as info:
        await stage(make_call(), next_)
    assert not next_.calls
    assert info.value.retry_after_s == pytest.approx(2.0)
    assert info.value.status == 503
    assert info.value.code == "target_ejected"
    assert info.value.retryable


@pytest.mark.asyncio
async def test_failure_in_the_stream_before_the_first_chunk(make_call, make_reply) -> None:
    stage, breaker, _, _ = setup()
    for _ in range(2):
        reply = await stage(make_call(), answering(make_reply(ProviderTimeout("slow"))))
        with pytest.raises(ProviderTimeout):
            await drain(reply)
    assert breaker.state is OPEN


@pytest.mark.asyncio
async def test_empty_stream_is_a_failure(make_call, make_reply) -> None:
    stage, breaker, _, _ = setup()
    assert await drain(await stage(make_call(), answering(make_reply()))) == []
    assert breaker.snapshot(100.0).failures == 1


@pytest.mark.asyncio
async def test_mid_stream_failure_counts_once(make_call, make_reply) -> None:
    stage, breaker, _, _ = setup(consecutive_failures=100, min_calls=1, failure_ratio=1.0)
    reply = await stage(make_call(), answering(make_reply(b"a", ProviderUnavailable("cut"))))
    with pytest.raises(ProviderUnavailable):
        await drain(reply)
    snap = breaker.snapshot(100.0)
    assert (snap.calls, snap.failures) == (1, 1)
    assert breaker.state is OPEN


@pytest.mark.asyncio
async def test_auth_failure_ejects_at_once(make_call) -> None:
    stage, breaker, clock, seen = setup(auth_failure_open_s=300.0)
    await fail(stage, make_call(), ProviderAuthFailed("upstream said 401"))
    assert breaker.state is OPEN
    snap = breaker.snapshot(clock.now)
    assert snap.open_until == clock.now + 300.0
    assert snap.reason is not None and snap.reason.startswith("auth: target 't'")
    assert "401" in snap.reason
    assert seen[0][1:3] == (CLOSED, OPEN)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "exc", [ProviderRateLimited("429"), TargetThrottled("busy"), UpstreamRejected("bad")]
)
async def test_capacity_and_client_errors_are_not_health_failures(make_call, exc) -> None:
    stage, breaker, _, _ = setup(consecutive_failures=1)
    await fail(stage, make_call(), exc)
    assert breaker.state is CLOSED
    assert breaker.snapshot(100.0).failures == 0


@pytest.mark.asyncio
async def test_half_open_probe_success_closes(make_call, make_reply) -> None:
    stage, breaker, clock, seen = setup(consecutive_failures=1)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    reply = await stage(make_call(), answering(make_reply(b"ok")))
    assert breaker.state is HALF_OPEN
    with pytest.raises(TargetEjected):  # one probe at a time
        await stage(make_call(), answering(make_reply(b"ok")))
    await drain(reply)
    assert breaker.state is CLOSED
    assert [(old, new) for _, old, new, _ in seen] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


@pytest.mark.asyncio
async def test_half_open_probe_failure_reopens(make_call) -> None:
    stage, breaker, clock, _ = setup(consecutive_failures=1)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    await fail(stage, make_call(), ProviderUnavailable("still down"))
    assert breaker.state is OPEN
    assert breaker.snapshot(clock.now).open_until == clock.now + 10.0


@pytest.mark.asyncio
async def test_probe_closed_before_its_first_chunk_frees_the_slot(make_call, make_reply) -> None:
    stage, breaker, clock, _ = setup(consecutive_failures=1)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    reply = await stage(make_call(), answering(make_reply(b"ok")))
    await reply.chunks.aclose()  # type: ignore[attr-defined]
    assert breaker.state is HALF_OPEN
    assert breaker.allow(clock.now)  # the slot is free again


@pytest.mark.asyncio
async def test_cancelled_probe_records_nothing_and_frees_the_slot(make_call) -> None:
    stage, breaker, clock, _ = setup(consecutive_failures=1)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    started = asyncio.Event()

    async def hanging(call: Call) -> Reply:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(stage(make_call(), hanging))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert breaker.allow(clock.now)


@pytest.mark.asyncio
async def test_cancelled_while_waiting_for_the_first_chunk(make_call) -> None:
    stage, breaker, _, _ = setup(consecutive_failures=1)
    closed: list[bool] = []

    async def slow() -> AsyncIterator[bytes]:
        try:
            await asyncio.sleep(60)
            yield b"late"
        finally:
            closed.append(True)

    reply = await stage(make_call(), answering(Reply(slow(), ReplyStats())))
    task = asyncio.ensure_future(anext(reply.chunks))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await reply.chunks.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
    assert breaker.state is CLOSED
    assert breaker.snapshot(100.0).calls == 0


@pytest.mark.asyncio
async def test_probe_refused_by_the_throttle_below_frees_the_slot(make_call) -> None:
    stage, breaker, clock, _ = setup(consecutive_failures=1)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    await fail(stage, make_call(), TargetThrottled("at capacity"))
    assert breaker.state is HALF_OPEN
    assert breaker.allow(clock.now)


@pytest.mark.asyncio
async def test_auth_failure_of_a_probe_ejects_for_the_auth_period(make_call) -> None:
    stage, breaker, clock, _ = setup(consecutive_failures=1, auth_failure_open_s=600.0)
    await fail(stage, make_call(), ProviderUnavailable("down"))
    clock.now += 5.0
    await fail(stage, make_call(), ProviderAuthFailed("quota"))
    assert breaker.state is OPEN
    assert breaker.snapshot(clock.now).open_until == clock.now + 600.0
