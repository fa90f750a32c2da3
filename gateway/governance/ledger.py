"""The ledger: budgets and rate windows in Redis, reserved before a call and settled after it.

Why reserve-then-settle: checking a budget and charging after the response lets concurrent
requests all pass the check and overshoot together (the failure of LiteLLM's budgets, Envoy's
documented overshoot). Here one Lua script (``reserve.lua``) checks every rate window and every
budget that applies and, only if all pass, reserves the request's worst case (prompt estimate +
output cap) in all of them: all or nothing, atomic across replicas. ``settle.lua`` then releases
the reservation and charges the actual usage, once: a budget is charged only by the settle that
removes the reservation's entry, so a second settle changes nothing and no per-call marker is
left behind (state that never shrinks). Settles are batched (``settle_many``: one script call for
many requests). A reservation carries an expiry, so a replica that dies mid-request returns its
reservations on its own; a call that outlives its reservation (``reservation_ttl_s``) is then
not charged (under-counted, never over-counted).

USD amounts are kept as integer micro-dollars (no float drift in Redis). Rate windows are exact
sliding windows (a sorted set of entries per window), so accepted requests in any window never
exceed the limit, across replicas.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

HERE = Path(__file__).parent
PREFIX = "tg:gov"
USD_SCALE = 1_000_000  # micro-dollars


@dataclass(frozen=True, slots=True)
class Charge:
    """One budget a request draws on, e.g. key 'k1', tokens, this UTC day."""

    name: str  # "key:k1:tokens:day"
    limit: int
    amount: int
    period_end: datetime

    @property
    def hash_key(self) -> str:
        return f"{PREFIX}:b:{self.name}:{_day_label(self.period_end)}"

    @property
    def zset_key(self) -> str:
        return self.hash_key + ":r"

    @property
    def ttl_s(self) -> int:
        return self.ttl_at(datetime.now(UTC))

    def ttl_at(self, now: datetime) -> int:
        return int((self.period_end - now).total_seconds()) + 86400


@functools.lru_cache(maxsize=64)
def _day_label(end: datetime) -> str:
    """``YYYYMMDD`` of a period's end (a handful of distinct values: formatted once each)."""
    return f"{end:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding rate window, e.g. key 'k1' requests per minute."""

    name: str  # "key:k1:rpm"
    limit: int
    cost: int
    window_ms: int = 60_000

    @property
    def zset_key(self) -> str:
        return f"{PREFIX}:w:{self.name}"

    @property
    def sum_key(self) -> str:
        return f"{PREFIX}:w:{self.name}:sum"


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # "budget" | "rate"
    name: str
    current: int
    limit: int
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Headroom:
    """What is left in one window after this request, for the x-ratelimit-* headers."""

    window: Window
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Fill:
    """How full one budget is after this reservation."""

    charge: Charge
    total: int

    @property
    def ratio(self) -> float:
        return self.total / self.charge.limit if self.charge.limit else 1.0


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    charges: tuple[Charge, ...]


def period_ends(now: datetime) -> dict[str, datetime]:
    day_end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_next_month = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return {"day": day_end, "month": first_next_month}


class Ledger:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._reserve: Any = redis.register_script((HERE / "reserve.lua").read_text())
        self._settle: Any = redis.register_script((HERE / "settle.lua").read_text())

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def reserve(
        self,
        reservation: Reservation,
        windows: tuple[Window, ...],
        now_ms: int,
        expiry_ms: int,
    ) -> Refusal | tuple[list[Headroom], list[Fill]]:
        """Admit one request (see ``reserve_many``)."""
        return (await self.reserve_many([(reservation, windows, expiry_ms)], now_ms))[0]

    async def reserve_many(
        self, items: list[tuple[Reservation, tuple[Window, ...], int]], now_ms: int
    ) -> list[Refusal | tuple[list[Headroom], list[Fill]]]:
        """Admit many requests in one script call, each all-or-nothing, in order."""
        keys: list[str] = []
        args: list[str | int] = [len(items), now_ms]
        now = datetime.now(UTC)
        for reservation, windows, expiry_ms in items:
            charges = reservation.charges
            keys += [c.hash_key for c in charges] + [c.zset_key for c in charges]
            for w in windows:
                keys += [w.zset_key, w.sum_key]
            budgets = " ".join(f"{c.limit} {c.amount} {c.ttl_at(now)}" for c in charges)
            rates = " ".join(f"{w.limit} {w.cost} {w.window_ms}" for w in windows)
            args += [reservation.id, expiry_ms, len(charges), budgets, len(windows), rates]
        results = await self._reserve(keys=keys, args=args)
        return [
            verdict_of(result, reservation, windows)
            for result, (reservation, windows, _) in zip(results, items, strict=True)
        ]

    async def settle(self, reservation: Reservation, actuals: tuple[int, ...]) -> bool:
        """Release one reservation and charge its actual usage; False if already settled."""
        return (await self.settle_many([(reservation, actuals)]))[0]

    async def settle_many(self, items: list[tuple[Reservation, tuple[int, ...]]]) -> list[bool]:
        """Settle many requests in one script call; per request, whether this call settled it."""
        keys: list[str] = []
        args: list[str | int] = [len(items)]
        for reservation, actuals in items:
            charges = reservation.charges
            for c in charges:
                keys += [c.hash_key, c.zset_key]
            amounts = " ".join(f"{c.amount} {a}" for c, a in zip(charges, actuals, strict=True))
            args += [reservation.id, len(charges), amounts]
        result = await self._settle(keys=keys, args=args)
        return [bool(int(x)) for x in result]

    async def usage(self, charge: Charge) -> tuple[int, int]:
        """(used, reserved) of one budget, for the admin API and tests."""
        used, reserved = await self._redis.hmget(charge.hash_key, ["used", "reserved"])
        return int(used or 0), int(reserved or 0)


def verdict_of(
    result: list[Any], reservation: Reservation, windows: tuple[Window, ...]
) -> Refusal | tuple[list[Headroom], list[Fill]]:
    """One request's reply from ``reserve.lua``, typed."""
    charges = reservation.charges
    verdict = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
    if verdict == "ok":
        rooms = [
            Headroom(w, int(result[1 + 2 * k]), int(result[2 + 2 * k]) / 1000)
            for k, w in enumerate(windows)
        ]
        base = 1 + 2 * len(windows)
        fills = [Fill(c, int(result[base + k])) for k, c in enumerate(charges)]
        return rooms, fills
    index = int(result[1]) - 1
    if verdict == "rate":
        w = windows[index]
        return Refusal("rate", w.name, int(result[2]), int(result[3]), int(result[4]) / 1000)
    c = charges[index]
    wait = (c.period_end - datetime.now(UTC)).total_seconds()
    return Refusal("budget", c.name, int(result[2]), int(result[3]), wait)
