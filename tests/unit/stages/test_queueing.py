from __future__ import annotations

import asyncio
import random

import pytest

from gateway.calls import Call, Principal, Reply, ReplyStats
from gateway.errors import AllTargetsFailed, TargetThrottled
from gateway.rules import Resilience
from gateway.stages.fallback import FallbackChain
from gateway.stages.observed import Observations
from gateway.stages.queueing import CapacityQueue
from gateway.stages.retry_budget import RetryBudget

AtCapacity = TargetThrottled


@pytest.mark.asyncio
async def test_waiters_are_served_by_priority() -> None:
    queue = CapacityQueue(max_waiting=10, max_wait_s=5)
    order: list[str] = []
    deadline = asyncio.get_running_loop().time() + 5

    async def waiter(name: str, priority: str, delay: float) -> None:
        assert await queue.wait_turn(priority, delay, deadline)
        order.append(name)

    # The batch waiter's delay ends first, but interactive ones queued ahead of it go first.
    await asyncio.gather(
        waiter("batch", "batch", 0.01),
        waiter("interactive", "interactive", 0.03),
        waiter("standard", "standard", 0.02),
    )
    assert order == ["interactive", "standard", "batch"]


@pytest.mark.asyncio
async def test_a_full_queue_or_a_passed_deadline_gives_up() -> None:
    queue = CapacityQueue(max_waiting=0, max_wait_s=5)
    loop = asyncio.get_running_loop()
    assert not await queue.wait_turn("standard", 0.0, loop.time() + 5)
    queue = CapacityQueue(max_waiting=10, max_wait_s=0.01)
    assert not await queue.wait_turn("standard", 1.0, loop.time() + 0.01)


def chain_with(stack, queue: CapacityQueue) -> FallbackChain:
    return FallbackChain(
        {"a": stack},
        windows={"a": 1000},
        policy=Resilience(),
        budget=RetryBudget(0.2, 5),
        observations=Observations(),
        rng=random.Random(1),
        queue=queue,
    )


@pytest.mark.asyncio
async def test_a_call_waits_for_capacity_then_runs(make_call) -> None:
    refusals = [AtCapacity("busy", retry_after_s=0.02), AtCapacity("busy", retry_after_s=0.02)]

    async def stack(call: Call) -> Reply:
        if refusals:
            raise refusals.pop()

        async def chunks():
            yield b"A"

        return Reply(chunks(), ReplyStats())

    reply = await chain_with(stack, CapacityQueue(10, 5))(make_call(targets=["a"]))
    assert [c async for c in reply.chunks] == [b"A"]
    assert any(n.key == "queued-ms" for n in reply.notes)


@pytest.mark.asyncio
async def test_a_call_that_cannot_start_in_time_gets_429(make_call) -> None:
    async def stack(call: Call) -> Reply:
        raise AtCapacity("busy", retry_after_s=10)

    with pytest.raises(AllTargetsFailed) as info:
        await chain_with(stack, CapacityQueue(10, 0.05))(make_call(targets=["a"]))
    assert info.value.status == 429 and info.value.retry_after_s >= 1


def test_principal_priority_defaults_to_standard() -> None:
    assert Principal("k", "t", None).priority == "standard"
