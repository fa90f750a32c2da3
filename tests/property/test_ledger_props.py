"""The ledger against a real Redis: random reserve/settle/expire sequences never go negative,
never charge more than reserved, never overshoot a budget, and settling twice changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.governance.ledger import Charge, Ledger, Refusal, Reservation

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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=ops)
def test_ledger_invariants(redis_url: str, sequence) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
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
                    assert await ledger.settle(r, (actual,))
                    charged += actual
                    settled.append((r, actual))
                elif op == "settle-again" and settled:
                    r, actual = settled[0]
                    assert not await ledger.settle(r, (actual,))
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


def test_settled_calls_leave_no_state_behind(redis_url: str) -> None:
    """Settle is idempotent without a key per call: after many calls, only the budget's own hash
    remains (the state store does not grow with the number of calls)."""

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        ledger = Ledger(client)
        end = datetime.now(UTC) + timedelta(days=1)
        name = f"shrink:{uuid.uuid4().hex}"
        ids = [uuid.uuid4().hex for _ in range(200)]
        before = await client.dbsize()
        try:
            for rid in ids:
                r = Reservation(rid, (Charge(name, 10**9, 10, end),))
                assert not isinstance(await ledger.reserve(r, (), 1_000, 60_000), Refusal)
                assert await ledger.settle(r, (7,))
                assert not await ledger.settle(r, (7,))
            assert await ledger.usage(Charge(name, 10**9, 0, end)) == (1400, 0)
            assert await client.dbsize() - before <= 1  # the budget's hash, nothing per call
        finally:
            keys = [k async for k in client.scan_iter(match=f"tg:gov:b:{name}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(run())
