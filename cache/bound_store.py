"""The false-hit bound's samples in Redis, so every replica learns one cut from all of them.

When to use: the ``SemanticCache`` stage of each gateway process adds each sample of an alias's
``HitBound`` here and, at most every ``PULL_S`` seconds, replaces the bound's counts with the
sum over all replicas (``HitBound.adopt``). Without it (or while Redis is down) each process
learns from its own samples only.

Policy:
- Counts per grid point of the bound (samples, disagreements) in one hash per hour
  (``EPOCH_S``); the last ``EPOCHS`` hours count, older hashes expire. So the shared window is
  a day of samples, where a lone process keeps its last ``cache.bound.WINDOW``.
- The key names the alias, the verifier, the bound and the calibrated cut: changing any of
  them starts afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

EPOCH_S = 3600
EPOCHS = 24
PULL_S = 5.0


def bound_key(alias: str, scale: str, bound: float, calibrated: float) -> str:
    """One alias's counts for one verifier (``scale``), bound and calibrated cut."""
    return f"tg:semantic-bound:{alias}:{scale}:{bound:g}:{calibrated:g}"


class BoundStore:
    """Adds samples to, and sums, the per-hour counts of an alias's bound in Redis."""

    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def add(self, key: str, index: int, agreed: bool) -> None:
        epoch = int(self._clock() // EPOCH_S)
        name = f"{key}:{epoch}"
        pipe: Any = self._redis.pipeline(transaction=False)
        pipe.hincrby(name, f"s{index}", 1)
        if not agreed:
            pipe.hincrby(name, f"f{index}", 1)
        pipe.expire(name, EPOCH_S * (EPOCHS + 1))
        await pipe.execute()

    async def totals(self, key: str, points: int) -> tuple[list[int], list[int]]:
        """(samples, disagreements) per grid point, summed over the last ``EPOCHS`` hours."""
        epoch = int(self._clock() // EPOCH_S)
        pipe: Any = self._redis.pipeline(transaction=False)
        for e in range(epoch - EPOCHS + 1, epoch + 1):
            pipe.hgetall(f"{key}:{e}")
        seen, failed = [0] * points, [0] * points
        for counts in await pipe.execute():
            for field, value in counts.items():
                name = field.decode() if isinstance(field, bytes) else str(field)
                index = int(name[1:])
                if 0 <= index < points:
                    (seen if name[0] == "s" else failed)[index] += int(value)
        return seen, failed
