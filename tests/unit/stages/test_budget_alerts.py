from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from gateway.governance.ledger import Charge, Fill, Ledger
from gateway.rules import Governance
from gateway.stages.budget import Budget
from gateway.tasks import Spawner


def test_a_daily_budget_past_80_percent_alerts_once() -> None:
    alerts: list[tuple[str, dict[str, object]]] = []
    budget = Budget(
        Ledger(aioredis.Redis()),  # never contacted here
        Governance(),
        worst_price={},
        target_price={},
        spawner=Spawner(),
        alert=lambda kind, details: alerts.append((kind, details)),
    )
    end = datetime.now(UTC) + timedelta(days=1)
    day = Charge("key:k:tokens:day", 1000, 10, end)
    month = Charge("key:k:tokens:month", 1000, 10, end)
    budget._check_fill([Fill(day, 700), Fill(month, 900)])
    assert alerts == []  # under 80% a day; months are not alerted on
    budget._check_fill([Fill(day, 810)])
    budget._check_fill([Fill(day, 900)])
    assert [kind for kind, _ in alerts] == ["budget_80pct"]
    assert alerts[0][1]["budget"] == "key:k:tokens:day"
