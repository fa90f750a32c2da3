"""Two replicas' lease books on one Redis, hundreds of concurrent calls with random sizes and
random spends, each admitted as the budget stage does (leased pools locally, the rest through
``reserve.lua``): used + reserved never passes the budget, the spend charged is exactly the
spend of the calls (once every lease is back), and accepted requests never pass the RPM limit."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from gateway.governance.lease_policy import Leases
from gateway.governance.leases import LeaseBook
from gateway.governance.ledger import Charge, Ledger, Refusal, Reservation, Window
from gateway.tasks import Spawner

BUDGET = 20_000


async def one_call(
    book: LeaseBook, ledger: Ledger, rng: random.Random, name: str, rpm: int, spent: list[int]
) -> bool | None:
    """True: admitted on leases only; None: admitted with an exact part; False: refused."""
    amount = rng.randint(1, 120)
    end = datetime.now(UTC) + timedelta(days=1)
    c = Charge(name, BUDGET, amount, end)
    w = Window(f"{name}:rpm", rpm, 1)
    taken = await book.take((c,), (w,))
    exact = Reservation(uuid.uuid4().hex, taken.exact_charges)
    now = int(time.time() * 1000)
    if exact.charges or taken.exact_windows:
        verdict = await ledger.reserve(exact, taken.exact_windows, now, now + 60_000)
        if isinstance(verdict, Refusal):
            book.release(taken)
            return False
    await asyncio.sleep(rng.random() * 0.05)  # the upstream call
    actual = rng.randint(0, amount)
    book.settle(taken, lambda _: actual)
    if exact.charges:
        await ledger.settle(exact, (actual,))
    spent.append(actual)
    return None if exact.charges or taken.exact_windows else True


# RPM 300: the window runs out first; 5000: the budget does (most calls on leases).
@pytest.mark.parametrize(("seed", "rpm"), [(1, 300), (2, 300), (3, 5000), (4, 5000)])
def test_two_replicas_never_overspend_and_never_pass_the_rpm(
    redis_url: str, seed: int, rpm: int
) -> None:
    async def run() -> None:
        rng = random.Random(seed)
        client = aioredis.Redis.from_url(redis_url, max_connections=1000)
        ledger = Ledger(client)
        spawners = [Spawner(), Spawner()]
        policy = Leases(validity_s=0.1, ttl_s=2)
        books = [LeaseBook(client, s, policy) for s in spawners]
        name = f"lprop:{uuid.uuid4().hex}"
        c = Charge(name, BUDGET, 0, datetime.now(UTC) + timedelta(days=1))
        spent: list[int] = []
        done = False

        async def watch() -> None:
            while not done:
                used, reserved = await ledger.usage(c)
                assert used + reserved <= BUDGET
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        try:
            sem = asyncio.Semaphore(200)

            async def bounded(i: int) -> bool | None:
                async with sem:
                    return await one_call(books[i % 2], ledger, rng, name, rpm, spent)

            results = await asyncio.gather(*(bounded(i) for i in range(600)))
            done = True
            await watcher
            accepted = sum(r is not False for r in results)
            local = sum(r is True for r in results)
            print(f"seed {seed}: accepted {accepted}, of which {local} on leases only")
            assert local > 0
            assert accepted <= rpm  # all within one 60 s window
            await asyncio.sleep(0.5)  # past validity: every lease is returned
            used, reserved = await ledger.usage(c)
            assert reserved == 0 and used == sum(spent) <= BUDGET
            window = int(await client.get(f"tg:gov:w:{name}:rpm:sum") or 0)
            # The window keeps every accepted call; a refused call's use stays counted only if its
            # lease was returned before the refusal (conservative, never under).
            assert accepted <= window <= len(results)
        finally:
            done = True
            for s in spawners:
                await s.aclose()
            keys = [k async for k in client.scan_iter(match=f"tg:gov:*{name}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(run())
