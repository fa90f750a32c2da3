"""How full each configured budget is, for the ``tiergate_budget_used_ratio`` gauge.

When to use: ``BudgetUse.run_forever`` runs in the background of each replica (the app's tracked
spawner), never on the request path: it reads the budgets the rules declare (per team, per
feature, global, and per key declared in the rules) from the ledger in Redis every few seconds
and hands ``(scope, unit, period) -> (used + reserved) / limit`` to the metric. Replicas share the
ledger, so they all report the same values; dashboards take the max over replicas. Budgets of keys
issued through the admin API and per-session caps are not listed (there can be very many); the
admin API's ``/admin/usage`` has their figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.governance.ledger import Charge, period_ends
from gateway.governance.plans import slots_of
from gateway.rules import Quota, Rules

log = logging.getLogger("tiergate.budget_use")
Fill = tuple[str, str, str]  # (scope, unit, period)
Report = Callable[[dict[Fill, float]], None]


def declared_budgets(rules: Rules, now: datetime) -> dict[Fill, Charge]:
    """Every budget the rules declare, as the ledger's charges for the current periods."""
    gov = rules.governance
    scopes: list[tuple[str, Quota]] = [(f"team:{n}", q) for n, q in gov.teams.items()]
    scopes += [(f"feature:{n}", q) for n, q in gov.features.items()]
    scopes.append(("global", gov.global_quota))
    scopes += [(f"key:{k.id}", k.quota) for k in rules.keys]
    ends = period_ends(now)
    out: dict[Fill, Charge] = {}
    for scope, quota in scopes:
        for s in slots_of(scope, quota.budgets):
            out[(scope, s.unit, s.period)] = Charge(s.name, s.limit, 0, ends[s.period])
    return out


class BudgetUse:
    """Reads the declared budgets' fill from Redis on a period (one pipeline per pass)."""

    def __init__(
        self, redis: aioredis.Redis, rules: Callable[[], Rules | None], report: Report
    ) -> None:
        self._redis = redis
        self._rules = rules  # the current rules' (they may be reloaded)
        self._report = report

    async def read(self, now: datetime | None = None) -> dict[Fill, float]:
        rules = self._rules()
        if rules is None:
            return {}
        budgets = declared_budgets(rules, now or datetime.now(UTC))
        if not budgets:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for charge in budgets.values():
                pipe.hmget(charge.hash_key, ["used", "reserved"])
            results = await pipe.execute()
        fills: dict[Fill, float] = {}
        for (fill, charge), (used, reserved) in zip(budgets.items(), results, strict=True):
            total = int(used or 0) + int(reserved or 0)
            fills[fill] = total / charge.limit if charge.limit else 1.0
        return fills

    async def run_forever(self, period_s: float) -> None:
        while True:
            try:
                self._report(await self.read())
            except RedisError as exc:  # the gauge keeps its last values meanwhile
                log.warning("budget use not read: %s", type(exc).__name__)
            await asyncio.sleep(period_s)
