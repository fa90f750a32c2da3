"""Leases against a real Valkey: ``lease.lua`` grants, denies near exhaustion, returns, renews
and is reaped; the local book admits without a round trip and gives everything back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.governance import lease_script as ops
from gateway.governance.lease_policy import Leases
from gateway.governance.leases import LeaseBook
from gateway.governance.ledger import Charge, Ledger, Refusal, Reservation, Window
from gateway.tasks import Spawner

NOW = 10**12  # a fixed "now" (ms) for script-level tests


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    keys = [k async for k in r.scan_iter(match="tg:gov:*lt-*")]
    if keys:
        await r.delete(*keys)
    await r.aclose()


def charge(limit: int, amount: int = 30) -> Charge:
    end = datetime.now(UTC) + timedelta(days=1)
    return Charge(f"lt-{uuid.uuid4().hex}", limit, amount, end)


def window(limit: int, cost: int = 1) -> Window:
    return Window(f"lt-{uuid.uuid4().hex}:rpm", limit, cost)


async def script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(
        int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")
    )


async def budget(client: aioredis.Redis, c: Charge) -> tuple[int, int, int]:
    """(used, reserved, entries in the reservation set)."""
    used, reserved = await client.hmget(c.hash_key, ["used", "reserved"])
    return int(used or 0), int(reserved or 0), await client.zcard(c.zset_key)


@pytest.mark.asyncio
async def test_a_budget_grant_is_a_sixteenth_of_what_is_free_and_returns_its_spend(
    client: aioredis.Redis,
) -> None:
    script, c = ops.LeaseScript(client), charge(1600)
    keys = (c.hash_key, c.zset_key)
    [[grant, total]] = await script.run(
        [ops.grant_budget(keys, "a", 1600, 500, 60, NOW + 5000, 60)], NOW
    )
    assert (grant, total) == (100, 100)  # min(want 500, 1600 / 16)
    assert await budget(client, c) == (0, 100, 1)
    # Another replica's exact admission sees the lease as reserved.
    ledger = Ledger(client)
    big = Reservation("x", (Charge(c.name, 1600, 1501, c.period_end),))
    refusal = await ledger.reserve(big, (), NOW, NOW + 1000)
    assert isinstance(refusal, Refusal) and refusal.current == 100
    [[removed], [again]] = await script.run(
        [ops.return_budget(keys, "a", 100, 70), ops.return_budget(keys, "a", 100, 70)], NOW
    )
    assert (removed, again) == (1, 0)  # returned once: a second return changes nothing
    assert await budget(client, c) == (70, 0, 0)


@pytest.mark.asyncio
async def test_grants_are_refused_near_exhaustion(client: aioredis.Redis) -> None:
    script, c = ops.LeaseScript(client), charge(1000)
    keys = (c.hash_key, c.zset_key)
    await client.hset(c.hash_key, "used", 100)
    # 900 free: 900 / 16 = 56 < two calls of 30: refused, nothing carved out.
    [[grant, total]] = await script.run(
        [ops.grant_budget(keys, "a", 1000, 500, 60, NOW + 5000, 60)], NOW
    )
    assert (grant, total) == (0, 100)
    assert await budget(client, c) == (100, 0, 0)


@pytest.mark.asyncio
async def test_a_lease_is_reaped_when_it_expires_unless_renewed(client: aioredis.Redis) -> None:
    script, c = ops.LeaseScript(client), charge(16_000)
    keys = (c.hash_key, c.zset_key)
    await script.run(
        [
            ops.grant_budget(keys, "dead", 16_000, 100, 60, NOW + 1000, 60),
            ops.grant_budget(keys, "alive", 16_000, 100, 60, NOW + 1000, 60),
        ],
        NOW,
    )
    [[held]] = await script.run([ops.renew_budget(keys, "alive", 100, NOW + 9000, 60)], NOW + 500)
    assert held == 1
    # Past the first expiry, any grant (or reserve.lua admission) reaps the dead replica's lease.
    [[grant, _]] = await script.run(
        [ops.grant_budget(keys, "n", 16_000, 100, 60, NOW + 9000, 60)], NOW + 2000
    )
    assert grant == 100
    assert await budget(client, c) == (0, 200, 2)
    [[returned]] = await script.run([ops.return_budget(keys, "dead", 100, 50)], NOW + 2000)
    assert returned == 0  # its spend is not charged (under-counted, never over-spent)
    [[held]] = await script.run([ops.renew_budget(keys, "dead", 100, NOW + 9000, 60)], NOW + 2000)
    assert held == 0


@pytest.mark.asyncio
async def test_a_window_lease_counts_until_its_validity_ends_then_only_its_uses(
    client: aioredis.Redis,
) -> None:
    script, w = ops.LeaseScript(client), window(1600)
    keys = (w.zset_key, w.sum_key)
    [[grant, total, _]] = await script.run(
        [ops.grant_window(keys, "a", 1600, 50, 2, 60_000, NOW + 1000)], NOW
    )
    assert (grant, total) == (50, 50)
    # Conservative: the whole lease counts, scored at the end of its validity.
    assert await client.zrange(w.zset_key, 0, -1, withscores=True) == [(b"a:50", NOW + 1000)]
    await script.run([ops.return_window(keys, "a", 50, 7, NOW + 300, 60_000)], NOW + 1000)
    assert await client.zrange(w.zset_key, 0, -1, withscores=True) == [(b"au:7", NOW + 300)]
    assert int(await client.get(w.sum_key) or 0) == 7
    # An exact admission 60 s after the last use no longer sees it; just before, it does.
    ledger = Ledger(client)
    r = Reservation("x", ())
    full = Window(w.name, 7, 1)
    assert isinstance(await ledger.reserve(r, (full,), NOW + 60_000, 0), Refusal)
    assert not isinstance(await ledger.reserve(r, (full,), NOW + 60_301, 0), Refusal)


@pytest.mark.asyncio
async def test_the_book_admits_locally_settles_locally_and_returns_everything(
    client: aioredis.Redis,
) -> None:
    spawner = Spawner()
    book = LeaseBook(client, spawner, Leases(validity_s=0.2, ttl_s=2))
    reached: list[bool] = []
    book.on_reachable = lambda: reached.append(True)  # the budget stage ends an outage on it
    c, w = charge(1_000_000), window(100_000)
    try:
        first = await book.take((c,), (w,))  # waits for one grant per pool (one script call)
        assert first.holds and first.uses and not first.exact_charges and not first.exact_windows
        assert reached  # the grant's script call succeeded
        before = await script_calls(client)
        takes = [await book.take((c,), (w,)) for _ in range(10)]
        assert await script_calls(client) == before  # no round trip on the common path
        assert all(t.holds and t.uses for t in takes)
        for t in [first, *takes]:
            book.settle(t, lambda _: 29)
        used, reserved, _ = await budget(client, c)
        assert used == 0 and reserved > 0  # held by the lease, charged when it is returned
        await asyncio.sleep(0.6)  # past validity: closed and returned by the keeper
        assert await budget(client, c) == (11 * 29, 0, 0)
        assert int(await client.get(w.sum_key) or 0) == 11  # the window keeps only the uses
    finally:
        await spawner.aclose()


@pytest.mark.asyncio
async def test_small_pools_and_pools_near_exhaustion_take_the_exact_path(
    client: aioredis.Redis,
) -> None:
    spawner = Spawner()
    book = LeaseBook(client, spawner, Leases(validity_s=0.2, ttl_s=2))
    tiny, session = window(3), Charge("session:k:s1", 10**6, 1, datetime.now(UTC))
    try:
        taken = await book.take((session,), (tiny,))
        assert taken.exact_windows == (tiny,) and taken.exact_charges == (session,)
        c = charge(1000)
        await client.hset(c.hash_key, "used", 100)  # 900 free: a grant would be 56 < 60
        taken = await book.take((c,), ())
        assert taken.exact_charges == (c,) and not taken.holds
        assert await budget(client, c) == (100, 0, 0)
        t0 = await script_calls(client)
        again = await book.take((c,), ())  # denied a moment ago: exact without asking
        assert again.exact_charges == (c,) and await script_calls(client) == t0
    finally:
        await spawner.aclose()


@pytest.mark.asyncio
async def test_a_denied_refill_returns_the_replicas_remainder_at_once(
    client: aioredis.Redis,
) -> None:
    spawner = Spawner()
    book = LeaseBook(client, spawner, Leases(validity_s=5, ttl_s=20))
    c = charge(1600, 30)
    try:
        taken = await book.take((c,), ())
        assert taken.holds and (await budget(client, c))[1] == 90  # 1600 / 16, in whole calls
        book.settle(taken, lambda _: 30)
        # Another replica spends most of the rest: this replica's next refill is denied.
        await client.hincrby(c.hash_key, "used", 1450)
        while True:
            t = await book.take((c,), ())
            if not t.holds:
                break
            book.settle(t, lambda _: 30)
        await asyncio.sleep(0.05)  # the return is sent in the background, at once
        used, reserved, entries = await budget(client, c)
        assert reserved == 0 and entries == 0 and used == 1450 + 90  # 3 calls of 30 on the lease
    finally:
        await spawner.aclose()


@pytest.mark.asyncio
async def test_a_lease_with_a_call_in_flight_is_renewed_and_returned_at_shutdown(
    client: aioredis.Redis,
) -> None:
    spawner = Spawner()
    book = LeaseBook(client, spawner, Leases(validity_s=0.1, ttl_s=2))
    c = charge(1_000_000)
    try:
        taken = await book.take((c,), ())
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # past the first expiry: kept alive by renewals
            await asyncio.sleep(0.1)
            probe = Reservation("probe", (Charge(c.name, c.limit, 0, c.period_end),))
            await Ledger(client).reserve(probe, (), int(time.time() * 1000), 0)  # reaps
        # Past its validity the lease shrank to what the call in flight holds.
        assert (await budget(client, c))[:2] == (0, 30)
        book.settle(taken, lambda _: 25)
        await asyncio.sleep(0.3)
        assert (await budget(client, c))[:2] == (25, 0)
        held = await book.take((c,), ())
        book.settle(held, lambda _: 5)
    finally:
        await spawner.aclose()  # shutdown: the keeper returns what it holds
    assert (await budget(client, c))[:2] == (30, 0)
