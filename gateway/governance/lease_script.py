"""The client side of ``lease.lua``: operations on budget and window leases, many per call.

When to use: only through ``LeaseBook`` (``gateway/governance/leases.py``), which batches the
grants, returns and renewals of one event-loop turn into one script call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

HERE = Path(__file__).parent
# Above this, a Lua number would print in exponent form inside an entry's member.
MAX_GRANT = 10**13


@dataclass(frozen=True, slots=True)
class Op:
    keys: tuple[str, str]
    args: tuple[str | int, ...]


def grant_budget(
    keys: tuple[str, str],
    lid: str,
    limit: int,
    want: int,
    least: int,
    expiry_ms: int,
    ttl_s: int,
    unit: int = 1,
) -> Op:
    return Op(keys, ("bg", lid, limit, min(want, MAX_GRANT), least, expiry_ms, ttl_s, unit))


def return_budget(keys: tuple[str, str], lid: str, amount: int, spent: int) -> Op:
    return Op(keys, ("br", lid, amount, spent))


def shrink_budget(
    keys: tuple[str, str],
    lid: str,
    amount: int,
    spent: int,
    new_lid: str,
    keep: int,
    expiry_ms: int,
    ttl_s: int,
) -> Op:
    return Op(keys, ("bs", lid, amount, spent, new_lid, keep, expiry_ms, ttl_s))


def renew_budget(keys: tuple[str, str], lid: str, amount: int, expiry_ms: int, ttl_s: int) -> Op:
    return Op(keys, ("bn", lid, amount, expiry_ms, ttl_s))


def grant_window(
    keys: tuple[str, str],
    lid: str,
    limit: int,
    want: int,
    least: int,
    window_ms: int,
    till_ms: int,
    unit: int = 1,
) -> Op:
    return Op(keys, ("wg", lid, limit, min(want, MAX_GRANT), least, window_ms, till_ms, unit))


def return_window(
    keys: tuple[str, str], lid: str, amount: int, used: int, last_ms: int, window_ms: int
) -> Op:
    return Op(keys, ("wr", lid, amount, used, last_ms, window_ms))


class LeaseScript:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._script: Any = redis.register_script((HERE / "lease.lua").read_text())

    async def run(self, ops: list[Op], now_ms: int) -> list[list[int]]:
        keys: list[str] = []
        args: list[str | int] = [len(ops), now_ms]
        for op in ops:
            keys += op.keys
            args += op.args
        result = await self._script(keys=keys, args=args)
        return [[int(x) for x in reply] for reply in result]
