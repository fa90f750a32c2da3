"""What the fallback chain observed per target: recent latency, time to first chunk, outcomes.

Fixed-size rings, so memory is bounded and a record is O(1). Percentiles are computed on demand
(the admin view) or cached for a short while (hedging asks for p95 TTFT on every hedged call).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

RING = 512


def percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True, slots=True)
class TargetView:
    target: str
    calls: int
    failures: int
    error_ratio: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None
    last_error: str | None


class Observations:
    """Per-target rings of (time, ok) outcomes and first-chunk times in seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._outcomes: dict[str, deque[tuple[float, bool]]] = {}
        self._ttft: dict[str, deque[float]] = {}
        self._last_error: dict[str, str] = {}
        self._p95_cache: dict[str, tuple[float, float | None]] = {}

    def record(self, target: str, ok: bool, ttft_s: float | None, error: str | None) -> None:
        ring = self._outcomes.get(target)
        if ring is None:
            ring = self._outcomes[target] = deque(maxlen=RING)
            self._ttft[target] = deque(maxlen=RING)
        ring.append((self._clock(), ok))
        if ok and ttft_s is not None:
            self._ttft[target].append(ttft_s)
        if error is not None:
            self._last_error[target] = error

    def p95_ttft_s(self, target: str) -> float | None:
        now = self._clock()
        cached = self._p95_cache.get(target)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        value = percentile(self._ttft.get(target, ()), 0.95)
        self._p95_cache[target] = (now, value)
        return value

    def view(self, target: str, window_s: float = 60.0) -> TargetView:
        since = self._clock() - window_s
        recent = [ok for t, ok in self._outcomes.get(target, ()) if t >= since]
        failures = sum(1 for ok in recent if not ok)
        ttft = list(self._ttft.get(target, ()))

        def ms(q: float) -> float | None:
            v = percentile(ttft, q)
            return None if v is None else round(v * 1000, 3)

        return TargetView(
            target=target,
            calls=len(recent),
            failures=failures,
            error_ratio=round(failures / len(recent), 4) if recent else 0.0,
            ttft_p50_ms=ms(0.5),
            ttft_p95_ms=ms(0.95),
            ttft_p99_ms=ms(0.99),
            last_error=self._last_error.get(target),
        )
