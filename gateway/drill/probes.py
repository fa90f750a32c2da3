"""Watching a drill from the side: breaker states and upstream call counts over time.

Every ``POLL_S`` the watch reads ``GET /admin/targets`` (breaker state, opened_at, open_until of
each target) and the sim's ``GET /_sim/stats`` (requests per model) at the same moment, so the
report can say when a breaker opened relative to the fault, and how many calls reached a target
while its breaker was open (only half-open probes should). A failed poll is counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.drill.endpoints import AdminApi, BreakerView, DrillError, SimApi

POLL_S = 0.1
SAME_OPENING_S = 0.01  # opened_at values closer than this are one opening


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float  # since the run's t0
    breakers: Mapping[str, BreakerView]  # empty without the admin API
    calls: Mapping[str, int] | None  # the sim's cumulative requests per model


@dataclass(slots=True)
class Watch:
    admin: AdminApi | None
    sim: SimApi
    samples: list[Sample] = field(default_factory=list)
    failed_polls: int = 0

    async def run(self, t0: float, stop: asyncio.Event) -> list[Sample]:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            await self._poll(t0)
            spent = loop.time() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, POLL_S - spent))
        await self._poll(t0)  # the state at the end
        return self.samples

    async def _poll(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        at = loop.time() - t0
        breakers: Mapping[str, BreakerView] = {}
        calls: Mapping[str, int] | None = None
        try:
            if self.admin is not None:
                breakers, calls = await asyncio.gather(self.admin.breakers(), self.sim.calls())
            else:
                calls = await self.sim.calls()
        except DrillError:
            self.failed_polls += 1
            return
        self.samples.append(Sample(at, breakers, calls))


@dataclass(frozen=True, slots=True)
class Transition:
    t_s: float  # when the watch saw it (since t0)
    old: str
    new: str
    reason: str | None


def transitions(samples: Sequence[Sample], target: str) -> list[Transition]:
    """State changes of one target's breaker as the polls saw them (a poll may miss a short
    half-open period; ``open_periods`` counts re-opens exactly)."""
    out: list[Transition] = []
    last: str | None = None
    for sample in samples:
        view = sample.breakers.get(target)
        if view is None:
            continue
        if last is not None and view.state != last:
            out.append(Transition(sample.t_s, last, view.state, view.reason))
        last = view.state
    return out


@dataclass(frozen=True, slots=True)
class OpenPeriod:
    opened_at: float  # epoch seconds, as the gateway reports it
    open_until: float | None
    seen_s: float  # first poll that showed it (since t0)
    reason: str | None

    @property
    def open_s(self) -> float | None:
        return None if self.open_until is None else self.open_until - self.opened_at


def open_periods(samples: Sequence[Sample], target: str) -> list[OpenPeriod]:
    """Each distinct opening of the breaker (first open and every re-open after a failed probe),
    identified by its ``opened_at``, in order."""
    out: list[OpenPeriod] = []
    for sample in samples:
        view = sample.breakers.get(target)
        if view is None or view.state == "closed" or view.opened_at is None:
            continue
        # The admin API converts monotonic times to epoch on every call: the same opening
        # comes back a few microseconds apart from poll to poll.
        if any(abs(p.opened_at - view.opened_at) < SAME_OPENING_S for p in out):
            continue
        out.append(OpenPeriod(view.opened_at, view.open_until, sample.t_s, view.reason))
    return sorted(out, key=lambda p: p.opened_at)


def calls_between(samples: Sequence[Sample], model: str, start_s: float, end_s: float) -> int:
    """Upstream calls to ``model`` between the first poll at or after ``start_s`` and the last
    poll at or before ``end_s`` (0 when the polls do not cover the span)."""
    inside = [s for s in samples if s.calls is not None and start_s <= s.t_s <= end_s]
    if len(inside) < 2:
        return 0
    first, last = inside[0].calls, inside[-1].calls
    assert first is not None and last is not None
    return last.get(model, 0) - first.get(model, 0)
