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


class ExactStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def get(self, key: str) -> Entry | None:
        raw = await self._redis.get(key)
        return decode(raw) if isinstance(raw, bytes) else None

    async def put(self, key: str, entry: Entry, expire_s: float) -> None:
        await self._redis.set(key, encode(entry), px=max(1, int(expire_s * 1000)))

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
