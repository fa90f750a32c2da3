"""The exact-cache store in Redis: complete answers by key, with the time they were stored.

One Redis key per answer (``cache.keys.redis_key``); the value is a one-line JSON header
(stored_at, model, target) and the answer's own bytes, so a hit returns the upstream's body as it
was, without re-encoding. Redis expiry is the longest an entry may be served (fresh or stale);
freshness is decided on read from ``stored_at``, so one entry serves both the fresh cache and the
degraded mode's "last good answer".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    stored_at: float  # epoch seconds
    model: str | None
    target: str | None

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.stored_at)


def encode(entry: Entry) -> bytes:
    head = orjson.dumps({"t": entry.stored_at, "m": entry.model, "g": entry.target})
    return head + b"\n" + entry.body


def decode(raw: bytes) -> Entry | None:
    head, sep, body = raw.partition(b"\n")
    if not sep:
        return None
    try:
        meta: Any = orjson.loads(head)
        return Entry(
            body=body, stored_at=float(meta["t"]), model=meta.get("m"), target=meta.get("g")
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# Store an entry only while its tenant's bytes written in this window and the previous one stay
# under the cap: entries live at most one window (their expiry), so a tenant holds at most about
# twice the cap. One round trip, atomic. KEYS: entry, this window's tally, the previous one's.
# ARGV: value, expiry ms, cap bytes, tally expiry ms. Returns 1 if stored, 0 if over the cap.
PUT_CAPPED = """
local size = string.len(ARGV[1])
local used = tonumber(redis.call("GET", KEYS[2]) or "0")
  + tonumber(redis.call("GET", KEYS[3]) or "0")
if used + size > tonumber(ARGV[3]) then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("INCRBY", KEYS[2], size)
redis.call("PEXPIRE", KEYS[2], ARGV[4])
return 1
"""
TALLY_PREFIX = "tg:cache:bytes:"


class ExactStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._put_capped: Any = redis.register_script(PUT_CAPPED)

    async def get(self, key: str) -> Entry | None:
        raw = await self._redis.get(key)
        return decode(raw) if isinstance(raw, bytes) else None

    async def put(self, key: str, entry: Entry, expire_s: float) -> None:
        await self._redis.set(key, encode(entry), px=max(1, int(expire_s * 1000)))

    async def put_capped(
        self, key: str, entry: Entry, expire_s: float, tenant: str, tenant_cap_bytes: int
    ) -> bool:
        """Store unless the tenant wrote ``tenant_cap_bytes`` in the last two windows of
        ``expire_s`` (its live entries are at most that); False when refused."""
        window_ms = max(1, int(expire_s * 1000))
        window = int(time.time() * 1000) // window_ms
        tally = f"{TALLY_PREFIX}{tenant}:{window_ms}:"
        keys = [key, f"{tally}{window}", f"{tally}{window - 1}"]
        args = [encode(entry), window_ms, tenant_cap_bytes, 2 * window_ms + 60_000]
        return bool(await self._put_capped(keys=keys, args=args))

    async def purge(self, pattern: str, batch: int = 500) -> int:
        """Delete every entry whose key matches ``pattern`` (SCAN, so Redis never blocks)."""
        removed = 0
        keys: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=batch):
            keys.append(key)
            if len(keys) >= batch:
                removed += await self._redis.unlink(*keys)
                keys.clear()
        if keys:
            removed += await self._redis.unlink(*keys)
        return removed
