"""Fail-open limits: what a replica enforces on its own while Redis is unreachable.

When to use: only with ``governance.state_outage: open``. The budget stage calls ``admit`` when
the ledger cannot be reached; the default (``closed``) answers 503 instead.

Policy:
- Rate windows (RPM, TPM per key, team, feature, global) become token buckets in this process,
  each holding ``local_share`` of the limit (e.g. 0.5 with two replicas), so the deployment as
  a whole stays near its limits even though replicas cannot see each other.
- Budgets (tokens, USD, calls per day or month) cannot be checked without the shared ledger:
  they are not enforced during the outage (each replica logs that once per outage), and the
  spend of these calls is not settled against them (the usage report still counts it, from the
  usage tally that is flushed when Redis returns). This is the trade-off ``open`` means.
- Buckets are created on first use and dropped when the outage ends (``reset``).
"""

from __future__ import annotations

import time

from gateway.governance.ledger import Refusal, Window
from gateway.targets.buckets import TokenBucket

MAX_BUCKETS = 100_000


class LocalLimits:
    def __init__(self, share: float) -> None:
        self._share = share
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, windows: tuple[Window, ...], now: float | None = None) -> Refusal | None:
        """Take every window's cost, all or nothing; a Refusal names the first that is short."""
        now = time.monotonic() if now is None else now
        buckets = [(w, self._bucket(w)) for w in windows]
        for window, bucket in buckets:
            if bucket.level(now) < min(window.cost, bucket.capacity):
                wait = bucket.time_until(window.cost, now)
                local = int(bucket.capacity)
                return Refusal("rate", window.name, local - int(bucket.level(now)), local, wait)
        for window, bucket in buckets:
            bucket.try_take(window.cost, now)
        return None

    def reset(self) -> None:
        self._buckets.clear()

    def _bucket(self, window: Window) -> TokenBucket:
        bucket = self._buckets.get(window.name)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()
            capacity = max(1.0, window.limit * self._share)
            bucket = TokenBucket(capacity, capacity * 1000 / window.window_ms)
            self._buckets[window.name] = bucket
        return bucket
