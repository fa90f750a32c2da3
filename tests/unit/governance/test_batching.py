"""Admissions and settles against a real Valkey: calls that arrive together share one script
call each way, and every call still gets its own exact, all-or-nothing verdict."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from gateway.governance.admitter import Admitter
from gateway.governance.ledger import Charge, Ledger, Refusal, Reservation
from gateway.governance.settler import Settler
from gateway.tasks import Spawner


async def script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(
        int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")
    )


@pytest.mark.asyncio
async def test_concurrent_calls_share_one_reserve_and_one_settle(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    spawner = Spawner()
    ledger = Ledger(client)
    admitter, settler = Admitter(ledger, spawner), Settler(ledger, spawner)
    end = datetime.now(UTC) + timedelta(days=1)
    name = f"batch:{uuid.uuid4().hex}"
    try:
        # Load the scripts once, so the counts below are the calls themselves.
        warm = Reservation(uuid.uuid4().hex, (Charge(name, 1000, 1, end),))
        await admitter.reserve(warm, (), 10**13)
        await ledger.settle(warm, (1,))
        before = await script_calls(client)
        rs = [Reservation(uuid.uuid4().hex, (Charge(name, 1000, 30, end),)) for _ in range(50)]
        verdicts = await asyncio.gather(*(admitter.reserve(r, (), 10**13) for r in rs))
        admitted = [r for r, v in zip(rs, verdicts, strict=True) if not isinstance(v, Refusal)]
        assert len(admitted) == 33  # (1000 - 1) // 30: exact, all or nothing per call
        for r in admitted:
            settler.add(r, (29,))
        for _ in range(500):  # the settler's linger is 2 ms; this waits for it, not a figure
            await asyncio.sleep(0.01)
            if not settler.pending:
                break
        await asyncio.sleep(0.05)
        assert await script_calls(client) - before == 2  # one reserve and one settle, for 50

        assert await ledger.usage(Charge(name, 1000, 0, end)) == (1 + 33 * 29, 0)
    finally:
        await spawner.aclose()
        keys = [k async for k in client.scan_iter(match=f"tg:gov:b:{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
