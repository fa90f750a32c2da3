"""Cost alerts: a log event and a metric always, and a webhook when the rules name one.

When to use: every alert goes through ``Telemetry.alert`` (log event + metric), which forwards
it to the ``AlertWebhook`` built once in the app's lifespan; the POSTs happen later in one
background task, never on the request path. ``SpendWatch`` runs once a minute in the background.

Policy:
- Kinds: ``budget_80pct`` (a daily budget passing 80%, from the budget stage),
  ``request_cost`` (one request over ``alert_request_usd``), ``spend_anomaly`` (below).
- Webhook: ``governance.alert_webhook_url`` receives ``{"kind": ..., "details": {...},
  "at": <unix time>}`` as JSON; at most ``QUEUE_MAX`` alerts wait (more are dropped with a
  warning), each POST has a 2 s deadline and is not retried. Never prompt text.
- Spend anomaly: the spend of the current UTC hour, per team and overall, above
  ``anomaly_factor`` times the trailing 7-day mean hourly spend (the 168 hours before it, hours
  without spend counting as zero) and above ``anomaly_min_usd``. Several replicas share the
  hourly totals in Redis; a SET NX per hour and scope makes one replica send each alert.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.governance.usage import SPEND_PREFIX, hour_of
from gateway.origins import Origin
from gateway.rules import Governance
from gateway.targets.upstream import UpstreamPool
from gateway.targets.upstream_errors import UpstreamError

log = logging.getLogger("tiergate.alerts")
AlertSink = Callable[[str, dict[str, object]], None]
QUEUE_MAX = 1000
ALERTED_PREFIX = "tg:alerted:"
TRAILING_HOURS = 7 * 24


class AlertWebhook:
    """Queue alerts and POST them to the operator's webhook, off the request path."""

    def __init__(self, pool: UpstreamPool, url: str | None = None) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)
        self._webhook: Origin | None = None
        self._path = "/"
        self.use(url)

    def use(self, url: str | None) -> None:
        """Point at ``url`` (None: no webhook); called at start-up and on reload."""
        self._webhook = Origin.parse(url) if url else None
        self._path = "/" if self._webhook is None else self._webhook.base_path or "/"

    def __call__(self, kind: str, details: dict[str, object]) -> None:
        if self._webhook is None:
            return
        body = orjson.dumps({"kind": kind, "details": details, "at": time.time()})
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            log.warning("alert webhook queue full: %s alert dropped", kind)

    async def deliver_forever(self) -> None:
        """The background task: POST queued alerts to the webhook, one at a time."""
        while True:
            body = await self._queue.get()
            await self.post(body)

    async def post(self, body: bytes) -> bool:
        if self._webhook is None:
            return False
        headers = [("content-type", "application/json"), ("user-agent", "tiergate-alerts")]
        try:
            async with asyncio.timeout(2.0):
                response = await self._pool.request(
                    self._webhook,
                    "POST",
                    self._path,
                    headers,
                    body,
                    connect_timeout_s=1.0,
                    read_timeout_s=2.0,
                )
                async with response:
                    await response.read()
                    status = response.status
        except (UpstreamError, OSError, TimeoutError) as exc:
            log.warning("alert webhook failed: %s", type(exc).__name__)
            return False
        if status >= 300:
            log.warning("alert webhook answered HTTP %d", status)
            return False
        return True


class SpendWatch:
    """Hourly spend against the trailing 7-day hourly mean, per team and overall."""

    def __init__(
        self,
        redis: aioredis.Redis,
        alert: AlertSink,
        governance: Callable[[], Governance | None],
    ) -> None:
        self._redis = redis
        self._alert = alert
        self._governance = governance  # the current rules' (they may be reloaded)

    async def check(self, now: datetime | None = None) -> list[str]:
        """One check; returns the scopes alerted on (by this replica)."""
        now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        hours = [hour_of(now - timedelta(hours=i)) for i in range(TRAILING_HOURS + 1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for label in hours:
                pipe.hgetall(SPEND_PREFIX + label)
            results: list[dict[bytes, bytes]] = await pipe.execute()
        current = {k.decode(): float(v) for k, v in results[0].items()}
        trailing: dict[str, float] = {}
        for fields in results[1:]:
            for k, v in fields.items():
                scope = k.decode()
                trailing[scope] = trailing.get(scope, 0.0) + float(v)
        gov = self._governance()
        if gov is None:
            return []
        alerted = []
        for scope, spent in sorted(current.items()):
            mean = trailing.get(scope, 0.0) / TRAILING_HOURS
            if spent < gov.anomaly_min_usd or spent <= gov.anomaly_factor * mean or mean == 0.0:
                continue
            marker = f"{ALERTED_PREFIX}anomaly:{hours[0]}:{scope}"
            if not await self._redis.set(marker, b"1", nx=True, ex=2 * 3600):
                continue  # another replica (or an earlier check) already sent it
            alerted.append(scope)
            self._alert(
                "spend_anomaly",
                {
                    "scope": scope,
                    "hour": hours[0],
                    "spend_usd": round(spent, 6),
                    "trailing_mean_usd": round(mean, 6),
                    "factor": gov.anomaly_factor,
                },
            )
        return alerted

    async def run_forever(self, period_s: float = 60.0) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.check()
            except (RedisError, OSError) as exc:
                log.warning("spend anomaly check skipped: %s", type(exc).__name__)
