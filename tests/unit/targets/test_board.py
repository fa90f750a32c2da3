"""BreakerBoard against a real Redis (REDIS_URL, else the session's embedded Valkey)."""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.rules import Breaker as Policy
from gateway.targets.board import (
    EXPIRY_MARGIN_S,
    FIELD_OPEN_UNTIL,
    FIELD_REASON,
    BreakerBoard,
)
from gateway.targets.breaker import CLOSED, HALF_OPEN, OPEN, Breaker


class Time:
    """One shared passage of time; each replica has its own monotonic origin."""

    def __init__(self) -> None:
        self.t = 0.0
        # PEXPIREAT is against the Redis server's real clock: start from now, per test (a
        # module-level start would be minutes old when the suite reaches this file).
        self.wall_0 = _time.time()

    def mono(self, origin: float):
        return lambda: origin + self.t

    def wall(self) -> float:
        return self.wall_0 + self.t


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    name = f"tiergate-test:{uuid.uuid4().hex}:breaker:"
    yield name
    keys = [k async for k in redis.scan_iter(match=name + "*")]
    if keys:
        await redis.delete(*keys)


def replica(redis: Redis, prefix: str, time: Time, origin: float, **policy: object):
    fields = {"min_calls": 100, "consecutive_failures": 1, "open_s": 5.0} | policy
    breakers = {"a": Breaker(Policy.model_validate(fields)), "b": Breaker(Policy())}
    board = BreakerBoard(redis, prefix, clock=time.mono(origin), wall=time.wall)
    return board, breakers, time.mono(origin)


@pytest.mark.asyncio
async def test_an_ejection_travels_to_the_other_replica(redis: Redis, prefix: str) -> None:
    time = Time()
    board1, breakers1, mono1 = replica(redis, prefix, time, 100.0)
    board2, breakers2, mono2 = replica(redis, prefix, time, 9_000.0)
    breakers1["a"].eject(mono1(), mono1() + 300.0, "auth: target 'a' answered 401")
    assert await board1.sync(breakers1) == []

    stored = await redis.hgetall(prefix + "a")
    assert float(stored[FIELD_OPEN_UNTIL.encode()]) == pytest.approx(time.wall_0 + 300.0)
    assert stored[FIELD_REASON.encode()] == b"auth: target 'a' answered 401"
    ttl_ms = await redis.pttl(prefix + "a")
    assert 0 < ttl_ms <= (300.0 + EXPIRY_MARGIN_S) * 1000  # a dead replica's ejection expires
    assert not await redis.exists(prefix + "b")

    time.t = 0.1
    changes = await board2.sync(breakers2)
    assert [(c.target, c.old_state, c.new_state) for c in changes] == [("a", CLOSED, OPEN)]
    snap = breakers2["a"].snapshot(mono2())
    assert snap.state is OPEN
    assert snap.open_until == pytest.approx(mono2() - 0.1 + 300.0)
    assert snap.reason == "auth: target 'a' answered 401"
    assert breakers2["b"].state is CLOSED

    # Nothing echoes: further syncs change nothing on either side.
    time.t = 0.3
    assert await board2.sync(breakers2) == []
    assert await board1.sync(breakers1) == []
    assert await redis.hgetall(prefix + "a") == stored


@pytest.mark.asyncio
async def test_a_breaker_trip_is_shared_and_then_probed_locally(redis: Redis, prefix: str) -> None:
    time = Time()
    board1, breakers1, mono1 = replica(redis, prefix, time, 100.0)
    board2, breakers2, mono2 = replica(redis, prefix, time, 9_000.0)
    breakers1["a"].record(False, mono1())  # 1 consecutive failure opens it for 5 s
    await board1.sync(breakers1)
    await board2.sync(breakers2)
    assert breakers2["a"].state is OPEN

    time.t = 5.5  # the shared open period is over: each replica probes for itself
    assert breakers2["a"].allow(mono2())
    assert breakers2["a"].state is HALF_OPEN
    breakers2["a"].record(True, mono2(), probe=breakers2["a"].probe_epoch)
    assert await board2.sync(breakers2) == []
    assert breakers2["a"].state is CLOSED  # the stale entry is not applied again


@pytest.mark.asyncio
async def test_a_restore_travels_too(redis: Redis, prefix: str) -> None:
    time = Time()
    board1, breakers1, mono1 = replica(redis, prefix, time, 100.0)
    board2, breakers2, mono2 = replica(redis, prefix, time, 9_000.0)
    breakers1["a"].eject(mono1(), mono1() + 600.0, "manual")
    await board1.sync(breakers1)
    await board2.sync(breakers2)
    assert breakers2["a"].state is OPEN

    time.t = 1.0
    breakers2["a"].restore(mono2())  # the admin restores it on replica 2
    await board2.sync(breakers2)
    changes = await board1.sync(breakers1)
    assert [(c.target, c.new_state) for c in changes] == [("a", CLOSED)]
    assert breakers1["a"].state is CLOSED
    assert await board2.sync(breakers2) == []
    assert await board1.sync(breakers1) == []

    # A later ejection wins over the earlier restore.
    time.t = 2.0
    breakers1["a"].eject(mono1(), mono1() + 60.0, "manual again")
    await board1.sync(breakers1)
    await board2.sync(breakers2)
    assert breakers2["a"].state is OPEN
    assert breakers2["a"].reason == "manual again"


@pytest.mark.asyncio
async def test_a_longer_local_ejection_is_published_over_a_shorter_one(
    redis: Redis, prefix: str
) -> None:
    time = Time()
    board1, breakers1, mono1 = replica(redis, prefix, time, 100.0)
    board2, breakers2, mono2 = replica(redis, prefix, time, 9_000.0)
    breakers1["a"].eject(mono1(), mono1() + 10.0, "short")
    await board1.sync(breakers1)
    await board2.sync(breakers2)
    breakers2["a"].eject(mono2(), mono2() + 100.0, "long")
    await board2.sync(breakers2)
    await board1.sync(breakers1)
    snap = breakers1["a"].snapshot(mono1())
    assert snap.open_until == pytest.approx(mono1() + 100.0)
    assert snap.reason == "long"


@pytest.mark.asyncio
async def test_past_entries_are_ignored(redis: Redis, prefix: str) -> None:
    time = Time()
    board, breakers, _ = replica(redis, prefix, time, 100.0)
    await redis.hset(
        prefix + "a",
        mapping={
            "open_until": time.wall_0 - 1.0,
            "opened_at": time.wall_0 - 10.0,
            "reason": "old",
        },
    )
    await redis.hset(prefix + "b", mapping={"open_until": "not a number"})
    assert await board.sync(breakers) == []
    assert breakers["a"].state is CLOSED
    assert breakers["b"].state is CLOSED


@pytest.mark.asyncio
async def test_an_unreachable_redis_leaves_breakers_local() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    breakers = {"a": Breaker(Policy(consecutive_failures=1))}
    breakers["a"].record(False, 1.0)
    try:
        assert await BreakerBoard(dead, "x:", timeout_s=0.5).sync(breakers) == []
    finally:
        await dead.aclose()
    assert breakers["a"].state is OPEN
