"""The ledger against a real Redis: random reserve/settle/expire sequences never go negative,
never charge more than reserved, never overshoot a budget, and settling twice changes nothing."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.governance.ledger import Charge, Ledger, Refusal, Reservation

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LIMIT = 1000

ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "settle", "settle-again", "expire"]),
        st.integers(1, 400),  # amount to reserve
        st.floats(0, 1),  # share of the reservation actually used
    ),
    min_size=1,
    max_size=30,
)


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {URL}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_ledger_invariants(sequence) -> None:
    redis_or_skip()

    async def run() -> None:
        client = aioredis.Redis.from_url(URL)
        ledger = Ledger(client)
        end = datetime.now(UTC) + timedelta(days=1)
        name = f"prop:{uuid.uuid4().hex}"
        now = 1_000_000
        open_: list[tuple[Reservation, int]] = []
        settled: list[tuple[Reservation, int]] = []
        charged = 0
        stale = 0  # expired reservations the next reserve will reap
        try:
            for op, amount, share in sequence:
                charge = Charge(name, LIMIT, amount, end)
                if op == "reserve":
                    r = Reservation(uuid.uuid4().hex, (charge,))
                    verdict = await ledger.reserve(r, (), now, now + 1000)
                    stale = 0
                    if not isinstance(verdict, Refusal):
                        open_.append((r, int(amount * share)))
                elif op == "settle" and open_:
                    r, actual = open_.pop(0)
                    assert await ledger.settle(r, (actual,), 60)
                    charged += actual
                    settled.append((r, actual))
                elif op == "settle-again" and settled:
                    r, actual = settled[0]
                    assert not await ledger.settle(r, (actual,), 60)
                elif op == "expire":
                    now += 2000  # every open reservation is now past its expiry
                    stale += sum(r.charges[0].amount for r, _ in open_)
                    open_ = []
                used, reserved = await ledger.usage(Charge(name, LIMIT, 0, end))
                assert used >= 0 and reserved >= 0
                assert used == charged
                assert reserved == sum(r.charges[0].amount for r, _ in open_) + stale
                assert used + reserved - stale <= LIMIT
        finally:
            keys = [k async for k in client.scan_iter(match=f"tg:gov:b:{name}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(run())
