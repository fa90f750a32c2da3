from __future__ import annotations

import pytest

from gateway.calls import Call, Reply
from gateway.errors import (
    AllTargetsFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    StreamInterrupted,
    UpstreamRejected,
)
from gateway.rules import Resilience
from gateway.stages.fallback import FallbackChain as _Chain
from gateway.stages.observed import Observations
from gateway.stages.retry_budget import RetryBudget


def FallbackChain(stacks, **kw):  # noqa: N802 - reads like the class in the tests below
    return _Chain(
        stacks,
        windows=kw.pop("windows", dict.fromkeys(stacks, 1000)),
        policy=kw.pop("policy", Resilience()),
        budget=kw.pop("budget", RetryBudget(0.2, 5)),
        observations=Observations(),
        **kw,
    )


def stack(*outcomes):
    """A fake target stack answering each call with the next outcome (Reply or exception)."""
    calls: list[Call] = []
    queue = list(outcomes)

    async def run(call: Call) -> Reply:
        calls.append(call)
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    run.calls = calls  # type: ignore[attr-defined]
    return run


async def collect(reply: Reply) -> list[bytes]:
    return [c async for c in reply.chunks]


@pytest.mark.asyncio
async def test_first_healthy_target_answers(make_call, make_reply) -> None:
    a, b = stack(make_reply(b"A")), stack(make_reply(b"B"))
    reply = await FallbackChain({"a": a, "b": b})(make_call(targets=["a", "b"]))
    assert await collect(reply) == [b"A"]
    assert not b.calls
    assert ("target", "a") in [(n.key, n.value) for n in reply.notes]


@pytest.mark.asyncio
async def test_falls_back_on_retryable_errors_in_order(make_call, make_reply) -> None:
    a = stack(ProviderUnavailable("down"))
    b = stack(ProviderRateLimited("slow down", retry_after_s=2))
    c = stack(make_reply(b"C"))
    reply = await FallbackChain({"a": a, "b": b, "c": c})(make_call(targets=["a", "b", "c"]))
    assert await collect(reply) == [b"C"]
    notes = [(n.key, n.value) for n in reply.notes]
    assert ("attempts", "3") in notes
    assert ("failed", "a:ProviderUnavailable") in notes
    assert ("failed", "b:ProviderRateLimited") in notes


@pytest.mark.asyncio
async def test_failure_before_the_first_chunk_still_falls_back(make_call, make_reply) -> None:
    a = stack(make_reply(ProviderUnavailable("died before first chunk")))
    b = stack(make_reply(b"B1", b"B2"))
    reply = await FallbackChain({"a": a, "b": b})(make_call(targets=["a", "b"], stream=True))
    assert await collect(reply) == [b"B1", b"B2"]


@pytest.mark.asyncio
async def test_failure_after_the_first_chunk_interrupts_the_stream(make_call, make_reply) -> None:
    a = stack(make_reply(b"A1", ProviderUnavailable("cut")))
    b = stack(make_reply(b"B"))
    reply = await FallbackChain({"a": a, "b": b})(make_call(targets=["a", "b"], stream=True))
    got: list[bytes] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in reply.chunks:
            got.append(chunk)
    assert got == [b"A1"]
    assert not b.calls


@pytest.mark.asyncio
async def test_client_errors_are_returned_without_fallback(make_call, make_reply) -> None:
    a = stack(UpstreamRejected("bad tool schema", status=400))
    b = stack(make_reply(b"B"))
    with pytest.raises(UpstreamRejected):
        await FallbackChain({"a": a, "b": b})(make_call(targets=["a", "b"]))
    assert not b.calls


@pytest.mark.asyncio
async def test_all_targets_failed_keeps_every_attempt(make_call) -> None:
    a = stack(ProviderUnavailable("a down"))
    b = stack(ProviderRateLimited("b busy", retry_after_s=7))
    with pytest.raises(AllTargetsFailed) as info:
        await FallbackChain({"a": a, "b": b})(make_call(targets=["a", "b"]))
    err = info.value
    assert [a.target for a in err.attempts] == ["a", "b"]
    assert err.status == 503
    assert err.retry_after_s == 7
