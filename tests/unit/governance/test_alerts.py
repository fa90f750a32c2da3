"""Cost alerts: the spend anomaly check against a real Valkey, the webhook against a real HTTP
server (stdlib), both through the production classes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.governance.alerts import TRAILING_HOURS, AlertWebhook, SpendWatch
from gateway.governance.usage import SPEND_PREFIX, UsageBook, UsageRow, hour_of
from gateway.rules import Governance
from gateway.state import StateStore
from gateway.targets.upstream import UpstreamPool
from tests.webhook import Receiver

NOW = datetime(2026, 11, 23, 15, 20, tzinfo=UTC)


@pytest_asyncio.fixture
async def redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    store = await asyncio.get_running_loop().run_in_executor(None, StateStore, None, tmp_path)
    try:
        yield store.redis
    finally:
        await store.aclose()


async def seed(redis: aioredis.Redis, scope: str, per_hour: float, current: float) -> None:
    hour = NOW.replace(minute=0)
    for i in range(1, TRAILING_HOURS + 1):
        await redis.hincrbyfloat(SPEND_PREFIX + hour_of(hour - timedelta(hours=i)), scope, per_hour)
    if current:
        await redis.hincrbyfloat(SPEND_PREFIX + hour_of(hour), scope, current)


@pytest.mark.asyncio
async def test_an_hour_over_twice_the_trailing_mean_alerts_once(redis: aioredis.Redis) -> None:
    alerts: list[tuple[str, dict[str, object]]] = []
    gov = Governance(anomaly_factor=2.0, anomaly_min_usd=1.0)
    watch = SpendWatch(redis, lambda k, d: alerts.append((k, d)), lambda: gov)
    await seed(redis, "team:a", 0.5, 1.01 + 0.0)  # 1.01 > 2 x 0.5: anomaly
    await seed(redis, "team:b", 0.5, 0.99)  # under the factor
    await seed(redis, "team:c", 0.0, 5.0)  # no history: nothing to compare with
    await seed(redis, "team:d", 0.2, 0.9)  # over the factor, under the minimum
    assert await watch.check(NOW) == ["team:a"]
    assert alerts[0][0] == "spend_anomaly"
    assert alerts[0][1]["scope"] == "team:a"
    assert alerts[0][1]["trailing_mean_usd"] == pytest.approx(0.5)
    # The next check in the same hour (on any replica) does not repeat it.
    other = SpendWatch(redis, lambda k, d: alerts.append((k, d)), lambda: gov)
    assert await watch.check(NOW) == []
    assert await other.check(NOW + timedelta(minutes=1)) == []
    assert len(alerts) == 1


@pytest.mark.asyncio
async def test_usage_flush_keeps_hourly_spend_per_team_and_overall(redis: aioredis.Redis) -> None:
    book = UsageBook(redis)
    book.add(UsageRow("k1", "alpha", "-", "fast", "m"), 10, 20, 0.25)
    book.add(UsageRow("k2", "alpha", "-", "fast", "m"), 10, 20, 0.5)
    book.add(UsageRow("k3", "beta", "-", "fast", "m"), 10, 20, 1.0)
    book.add(UsageRow("k3", "beta", "-", "fast", "m"), 10, 20, 0.0)
    await book.flush()
    hour = hour_of(datetime.now(UTC))
    totals = await redis.hgetall(SPEND_PREFIX + hour)
    got = {k.decode(): float(v) for k, v in totals.items()}
    assert got == pytest.approx({"all": 1.75, "team:alpha": 0.75, "team:beta": 1.0})


@pytest.mark.asyncio
async def test_alerts_reach_the_webhook_off_the_request_path(receiver: str) -> None:
    pool = UpstreamPool()
    webhook = AlertWebhook(pool, receiver)
    task = asyncio.create_task(webhook.deliver_forever())
    try:
        webhook("request_cost", {"usd": 3.5, "alias": "fast"})
        webhook("spend_anomaly", {"scope": "all"})
        for _ in range(100):
            if len(Receiver.bodies) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await pool.aclose()
    sent = [json.loads(b) for b in Receiver.bodies]
    assert [s["kind"] for s in sent] == ["request_cost", "spend_anomaly"]
    assert sent[0]["details"] == {"usd": 3.5, "alias": "fast"}


@pytest.mark.asyncio
async def test_a_failing_webhook_is_logged_not_raised(receiver: str, caplog) -> None:
    pool = UpstreamPool()
    Receiver.status = 500
    try:
        assert not await AlertWebhook(pool, receiver).post(b"{}")
        assert not await AlertWebhook(pool, "http://127.0.0.1:1/x").post(b"{}")
    finally:
        Receiver.status = 204
        await pool.aclose()
    assert "alert webhook" in caplog.text


def test_without_a_url_alerts_are_not_queued() -> None:
    webhook = AlertWebhook(UpstreamPool(), None)
    webhook("request_cost", {})
    assert webhook._queue.empty()
