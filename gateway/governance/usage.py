"""Cost accounting: usage per key, team, feature, alias and model, per hour, in Redis.

Every finished request adds to an in-process tally (a dict increment on the hot path); a
background task flushes the tally to Redis once a second in one pipeline: one hash per UTC hour
(``tg:usage:<YYYYMMDDHH>``), fields ``<key>|<team>|<feature>|<alias>|<model>|<measure>``. Days
and longer ranges are sums of hours. Several replicas add to the same hashes, so the admin API's
``GET /admin/usage`` sees the whole deployment. A flush that fails keeps its tally for the next
one (at most ``MAX_PENDING`` groups, then the oldest are dropped and a warning is logged).

Alerts (one log event each and a metric): a single request costing more than
``alert_request_usd``. The flush also keeps hourly spend totals per team and overall
(``tg:spend:<YYYYMMDDHH>``) for the spend anomaly check (``gateway.governance.alerts``).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("tiergate.usage")
PREFIX = "tg:usage:"
DIMENSIONS = ("key", "team", "feature", "alias", "model")
MEASURES = ("requests", "tokens_in", "tokens_out", "usd")
TTL_S = 400 * 86400
MAX_PENDING = 100_000
SPEND_PREFIX = "tg:spend:"  # hourly spend per "all" and "team:<team>" (gateway.governance.alerts)
SPEND_TTL_S = 9 * 86400


@dataclass(frozen=True, slots=True)
class UsageRow:
    key: str
    team: str
    feature: str
    alias: str
    model: str


def hour_of(ts: datetime) -> str:
    return ts.strftime("%Y%m%d%H")


class UsageBook:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._hour = (-1, "")  # (epoch hour, its label): formatted once an hour, not per call
        self._pending: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])

    def add(self, row: UsageRow, tokens_in: int, tokens_out: int, usd: float) -> None:
        values = (row.key, row.team, row.feature, row.alias, row.model)
        dims = "|".join(v.replace("|", "_") for v in values)
        epoch_hour = int(time.time() // 3600)
        if epoch_hour != self._hour[0]:
            self._hour = (epoch_hour, hour_of(datetime.fromtimestamp(epoch_hour * 3600, UTC)))
        tally = self._pending[(self._hour[1], dims)]
        tally[0] += 1
        tally[1] += tokens_in
        tally[2] += tokens_out
        tally[3] += usd

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, defaultdict(lambda: [0, 0, 0, 0.0])
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                spend: dict[tuple[str, str], float] = defaultdict(float)
                for (hour, dims), (requests, tin, tout, usd) in batch.items():
                    key = PREFIX + hour
                    pipe.hincrby(key, f"{dims}|requests", int(requests))
                    pipe.hincrby(key, f"{dims}|tokens_in", int(tin))
                    pipe.hincrby(key, f"{dims}|tokens_out", int(tout))
                    pipe.hincrbyfloat(key, f"{dims}|usd", usd)
                    pipe.expire(key, TTL_S)
                    if usd:
                        spend[(hour, "all")] += usd
                        spend[(hour, "team:" + dims.split("|", 2)[1])] += usd
                for (hour, scope), usd in spend.items():  # hourly totals for anomaly alerts
                    pipe.hincrbyfloat(SPEND_PREFIX + hour, scope, usd)
                    pipe.expire(SPEND_PREFIX + hour, SPEND_TTL_S)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            for group, tally in batch.items():
                mine = self._pending[group]
                for i, value in enumerate(tally):
                    mine[i] += value
            if len(self._pending) > MAX_PENDING:
                for group in list(self._pending)[: len(self._pending) - MAX_PENDING]:
                    del self._pending[group]
                log.warning("usage tally trimmed while Redis is unreachable")
            log.warning("usage flush deferred: %s", type(exc).__name__)

    async def report(
        self, start: datetime, end: datetime, group_by: Iterable[str]
    ) -> list[dict[str, Any]]:
        """Sum the hours in [start, end) grouped by the given dimensions."""
        dims = [d for d in group_by if d in DIMENSIONS]
        index = [DIMENSIONS.index(d) for d in dims]
        hours: list[str] = []
        t = start.replace(minute=0, second=0, microsecond=0)
        while t < end and len(hours) < 24 * 400:
            hours.append(PREFIX + hour_of(t))
            t += timedelta(hours=1)
        totals: dict[tuple[str, ...], dict[str, float]] = defaultdict(
            lambda: dict.fromkeys(MEASURES, 0.0)
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in hours:
                pipe.hgetall(key)
            results: list[Any] = await pipe.execute()
        for fields in results:
            for raw_field, raw_value in fields.items():
                field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
                parts = field.split("|")
                if len(parts) != len(DIMENSIONS) + 1:
                    continue
                group = tuple(parts[i] for i in index)
                totals[group][parts[-1]] += float(raw_value)
        rows = []
        for group, measures in sorted(totals.items()):
            row: dict[str, Any] = dict(zip(dims, group, strict=True))
            row.update({m: int(v) if m != "usd" else round(v, 8) for m, v in measures.items()})
            rows.append(row)
        return rows
