"""Retries, budgets, weights, windows, policy and hedging of the fallback chain (fake stacks)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from gateway.calls import Call, Reply, Route
from gateway.errors import (
    AllTargetsFailed,
    ContentPolicyRejected,
    ContextWindowExceeded,
    GatewayError,
    ProviderTimeout,
    ProviderUnavailable,
)
from gateway.rules import Hedge, Resilience
from gateway.stages.fallback import FallbackChain, order_of
from gateway.stages.observed import Observations
from gateway.stages.retry_budget import RetryBudget


class Skip(GatewayError):
    status = 503
    code = "target_ejected"
    retryable = True


def scripted(*outcomes, calls: list[str], name: str, delay_s: float = 0.0, closed=None):
    queue = list(outcomes)

    async def run(call: Call) -> Reply:
        calls.append(name)
        if delay_s:
            await asyncio.sleep(delay_s)
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, Exception):
            raise outcome

        async def chunks():
            try:
                yield outcome
            finally:
                if closed is not None:
                    closed.append(name)

        from gateway.calls import ReplyStats

        return Reply(chunks=chunks(), stats=ReplyStats())

    return run


def chain(stacks, *, sleeps=None, **kw) -> FallbackChain:
    async def fake_sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)

    return FallbackChain(
        stacks,
        windows=kw.pop("windows", dict.fromkeys(stacks, 1000)),
        policy=kw.pop("policy", Resilience()),
        budget=kw.pop("budget", RetryBudget(0.2, 5)),
        observations=Observations(),
        rng=random.Random(7),
        sleep=fake_sleep,
        **kw,
    )


async def body(reply: Reply) -> bytes:
    return b"".join([c async for c in reply.chunks])


@pytest.mark.asyncio
async def test_retries_same_target_with_full_jitter_backoff(make_call) -> None:
    calls: list[str] = []
    sleeps: list[float] = []
    a = scripted(ProviderUnavailable("1"), ProviderUnavailable("2"), b"A", calls=calls, name="a")
    c = chain({"a": a}, sleeps=sleeps, retries={"a": 2})
    reply = await c(make_call(targets=["a"]))
    assert await body(reply) == b"A"
    assert calls == ["a", "a", "a"]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.05 and 0 <= sleeps[1] <= 0.1


@pytest.mark.asyncio
async def test_a_timed_out_target_is_not_retried(make_call) -> None:
    calls: list[str] = []
    a = scripted(ProviderTimeout("slow"), calls=calls, name="a")
    b = scripted(b"B", calls=calls, name="b")
    reply = await chain({"a": a, "b": b}, retries={"a": 2})(make_call(targets="ab"))
    assert await body(reply) == b"B"
    assert calls == ["a", "b"]


@pytest.mark.asyncio
async def test_max_attempts_bounds_upstream_calls(make_call) -> None:
    calls: list[str] = []
    stacks = {n: scripted(ProviderUnavailable(n), calls=calls, name=n) for n in "abcdef"}
    c = chain(stacks, policy=Resilience(max_attempts=3))
    with pytest.raises(AllTargetsFailed):
        await c(make_call(targets=list("abcdef")))
    assert calls == ["a", "b", "c"]


@pytest.mark.asyncio
async def test_local_refusals_do_not_count_as_attempts(make_call) -> None:
    calls: list[str] = []
    stacks = {
        "a": scripted(Skip("open"), calls=calls, name="a"),
        "b": scripted(Skip("throttled"), calls=calls, name="b"),
        "c": scripted(b"C", calls=calls, name="c"),
    }
    reply = await chain(stacks, policy=Resilience(max_attempts=1))(make_call(targets="abc"))
    assert await body(reply) == b"C"
    assert ("attempts", "1") in [(n.key, n.value) for n in reply.notes]


@pytest.mark.asyncio
async def test_retry_budget_stops_a_storm(make_call) -> None:
    calls: list[str] = []
    stacks = {"a": scripted(ProviderUnavailable("a"), calls=calls, name="a")}
    budget = RetryBudget(0.2, 0.0, clock=lambda: 0.0)  # no refill: capacity 10 tokens
    c = chain(stacks, budget=budget, retries={"a": 3})
    for _ in range(100):
        with pytest.raises(AllTargetsFailed):
            await c(make_call(targets="a"))
    # 100 first attempts + 10 banked + 100 * 0.2 earned = at most 130 upstream calls,
    # where 3 retries a request would have made 400.
    assert 100 < len(calls) <= 130


@pytest.mark.asyncio
async def test_hops_to_the_next_target_are_not_charged_to_the_budget(make_call) -> None:
    calls: list[str] = []
    stacks = {
        "a": scripted(ProviderTimeout("hung"), calls=calls, name="a"),
        "b": scripted(b"B", calls=calls, name="b"),
    }
    budget = RetryBudget(0.2, 0.0, clock=lambda: 0.0)
    c = chain(stacks, budget=budget)
    for _ in range(50):
        assert await body(await c(make_call(targets="ab"))) == b"B"
    assert Counter(calls) == {"a": 50, "b": 50}


@pytest.mark.asyncio
async def test_context_window_only_tries_larger_windows(make_call) -> None:
    calls: list[str] = []
    stacks = {
        "small": scripted(ContextWindowExceeded("too long", status=400), calls=calls, name="small"),
        "same": scripted(b"S", calls=calls, name="same"),
        "large": scripted(b"L", calls=calls, name="large"),
    }
    windows = {"small": 8000, "same": 8000, "large": 200000}
    reply = await chain(stacks, windows=windows)(make_call(targets=["small", "same", "large"]))
    assert await body(reply) == b"L"
    assert calls == ["small", "large"]


@pytest.mark.asyncio
async def test_context_window_with_no_larger_target_is_the_clients_error(make_call) -> None:
    calls: list[str] = []
    stacks = {
        "a": scripted(ContextWindowExceeded("too long", status=400), calls=calls, name="a"),
        "b": scripted(b"B", calls=calls, name="b"),
    }
    with pytest.raises(ContextWindowExceeded):
        await chain(stacks)(make_call(targets="ab"))


@pytest.mark.asyncio
@pytest.mark.parametrize(("policy", "falls_back"), [("return", False), ("fallback", True)])
async def test_content_policy_is_configurable(make_call, policy, falls_back) -> None:
    calls: list[str] = []
    stacks = {
        "a": scripted(ContentPolicyRejected("flagged", status=400), calls=calls, name="a"),
        "b": scripted(b"B", calls=calls, name="b"),
    }
    c = chain(stacks, policy=Resilience(content_policy=policy))
    if falls_back:
        assert await body(await c(make_call(targets="ab"))) == b"B"
    else:
        with pytest.raises(ContentPolicyRejected):
            await c(make_call(targets="ab"))


def test_weighted_groups_share_load_and_priorities_hold() -> None:
    route = Route("x", ("a", "b", "c"), groups=((("a", 60), ("b", 40)), (("c", 1),)))
    rng = random.Random(1)
    firsts = Counter(order_of(route, rng)[0] for _ in range(10_000))
    assert 0.57 < firsts["a"] / 10_000 < 0.63
    assert all(order_of(route, rng)[2] == "c" for _ in range(100))


@pytest.mark.asyncio
async def test_hedge_starts_the_next_target_and_cancels_the_loser(make_call) -> None:
    calls: list[str] = []
    closed: list[str] = []
    slow = scripted(b"SLOW", calls=calls, name="slow", delay_s=1.0, closed=closed)
    fast = scripted(b"FAST", calls=calls, name="fast", closed=closed)
    c = chain(
        {"slow": slow, "fast": fast},
        hedges={"fast-alias": Hedge(min_delay_s=0.02, max_delay_s=0.05)},
    )
    call = make_call("fast-alias", targets=["slow", "fast"])
    reply = await c(call)
    assert await body(reply) == b"FAST"
    notes = [(n.key, n.value) for n in reply.notes]
    assert ("hedged", "slow->fast") in notes and ("target", "fast") in notes
    assert calls == ["slow", "fast"]


@pytest.mark.asyncio
async def test_no_hedge_when_the_first_target_is_quick(make_call) -> None:
    calls: list[str] = []
    a = scripted(b"A", calls=calls, name="a")
    b = scripted(b"B", calls=calls, name="b")
    c = chain({"a": a, "b": b}, hedges={"h": Hedge(min_delay_s=0.05, max_delay_s=0.1)})
    reply = await c(make_call("h", targets="ab"))
    assert await body(reply) == b"A"
    assert calls == ["a"]
