"""What a drill run measured, and the checks it shared by every scenario. Pure functions.

``Evidence`` is everything one scenario run produced (client outcomes, the watch's samples, the
sim's call counts, when the fault was on); ``Summary`` turns it into figures; the judges in
``gateway.drill.judges`` compare figures against the issue's "Figures to reach". A check that
cannot be judged from here (no admin API, so no breaker to watch) is ``passed=None``: shown as
SKIP, and it does not fail the scenario.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.drill.endpoints import Topology
from gateway.drill.probes import OpenPeriod, Sample, open_periods, transitions
from gateway.drill.runner import Load, Outcome

SAME_CLOCK_TOLERANCE_S = 0.05  # the gateway's epoch and ours, on one host, agree to about this


@dataclass(frozen=True, slots=True)
class FaultPlan:
    model: str
    kind: str
    params: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Evidence:
    scenario: str
    stream: bool
    topology: Topology
    load: Load
    samples: Sequence[Sample]
    faults: Sequence[FaultPlan]
    fault_on_s: float  # since t0: just before the first fault was added
    fault_off_s: float  # since t0: once the last fault was removed
    run_s: float
    rate: float
    upstream_calls: Mapping[str, int]  # per model, over the run (the sim's counters)
    baseline_p99_s: float | None  # the secondary's own p99 (primary-down)
    epoch_t0: float  # wall clock at t0, to compare with the admin API's epoch times
    fault_full_s: float  # since t0: once every fault was in place (several targets)
    deadline_s: float  # no answer may take longer than this (service time)
    admin: bool
    notes: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool | None  # None: could not be judged here
    detail: str


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000.0:.1f} ms"


def secs(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:+.2f} s"


def is_hung(outcome: Outcome, deadline_s: float) -> bool:
    return outcome.timed_out or outcome.service_s > deadline_s


@dataclass(frozen=True, slots=True)
class Summary:
    sent: int
    ok: int
    p50_s: float | None
    p99_s: float | None
    statuses: Counter[int]
    served_by: Counter[str]
    calls_total: int
    attempts_mean: float | None
    attempts_max: int | None
    hung: int
    stream_ends: Counter[str]
    ttft_p99_s: float | None
    ttft_max_s: float | None
    periods: Sequence[OpenPeriod]  # the primary's breaker openings after the fault started
    open_delay_s: float | None  # first opening after the fault, relative to the fault
    closed_after_s: float | None  # first close after the fault ended, relative to that

    @property
    def success_rate(self) -> float:
        return self.ok / self.sent if self.sent else 0.0

    @property
    def calls_per_request(self) -> float | None:
        return self.calls_total / self.sent if self.sent else None


def fault_epoch(ev: Evidence) -> float:
    return ev.epoch_t0 + ev.fault_on_s


def periods_after_fault(ev: Evidence) -> list[OpenPeriod]:
    start = fault_epoch(ev) - SAME_CLOCK_TOLERANCE_S
    return [p for p in open_periods(ev.samples, ev.topology.primary.name) if p.opened_at >= start]


def summarize(ev: Evidence) -> Summary:
    outcomes = ev.load.outcomes
    attempts = [o.attempts for o in outcomes if o.attempts is not None]
    ttfts = [o.ttft_s for o in outcomes if o.ttft_s is not None]
    periods = periods_after_fault(ev)
    open_delay = max(0.0, periods[0].opened_at - fault_epoch(ev)) if periods else None
    closed_after = None
    for change in transitions(ev.samples, ev.topology.primary.name):
        if change.new == "closed" and change.t_s >= ev.fault_off_s and periods:
            closed_after = change.t_s - ev.fault_off_s
            break
    return Summary(
        sent=len(outcomes),
        ok=sum(1 for o in outcomes if o.ok),
        p50_s=percentile([o.latency_s for o in outcomes], 50),
        p99_s=percentile([o.latency_s for o in outcomes], 99),
        statuses=Counter(o.status for o in outcomes),
        served_by=Counter(o.target or "?" for o in outcomes if o.ok),
        calls_total=sum(ev.upstream_calls.get(m, 0) for m in ev.topology.models),
        attempts_mean=sum(attempts) / len(attempts) if attempts else None,
        attempts_max=max(attempts) if attempts else None,
        hung=sum(1 for o in outcomes if is_hung(o, ev.deadline_s)),
        stream_ends=Counter(o.stream_end for o in outcomes if o.stream_end is not None),
        ttft_p99_s=percentile(ttfts, 99),
        ttft_max_s=max(ttfts) if ttfts else None,
        periods=periods,
        open_delay_s=open_delay,
        closed_after_s=closed_after,
    )


# ------------------------------------------------------------------ checks shared by scenarios
def check_success(s: Summary) -> Check:
    failed = s.sent - s.ok
    return Check(
        "100% success",
        s.sent > 0 and failed == 0,
        f"{s.ok}/{s.sent} complete answers ({s.success_rate:.2%}); statuses {dict(s.statuses)}",
    )


def check_no_hung(ev: Evidence, s: Summary) -> Check:
    worst = max((o.service_s for o in ev.load.outcomes), default=0.0)
    return Check(
        f"no request past its deadline ({ev.deadline_s:g} s)",
        s.hung == 0,
        f"{s.hung} past it; slowest answer {worst:.2f} s",
    )


def check_budget(ev: Evidence, s: Summary) -> Check:
    """Upstream calls stay within what the retry budget allows: every request's first call,
    plus ratio of them, plus the floor over the run, plus what the budget may hold at start."""
    b = ev.topology.budget
    bound = s.sent * (1.0 + b.retry_ratio) + b.retry_min_per_s * ev.run_s + b.retry_capacity
    worst = s.attempts_max or 0
    return Check(
        "attempts stay under the retry budget",
        s.calls_total <= bound and worst <= b.max_attempts,
        f"{s.calls_total} upstream calls for {s.sent} requests (bound {bound:.0f}); "
        f"attempts mean {s.attempts_mean or 0:.3f}, max {worst} (max_attempts {b.max_attempts})",
    )


def check_breaker_opened(ev: Evidence, s: Summary, within_s: float | None = None) -> Check:
    name = "breaker opened" + ("" if within_s is None else f" within {within_s:g} s of the fault")
    if not ev.admin:
        return Check(name, None, "no admin key: breakers not watched")
    if s.open_delay_s is None:
        return Check(name, False, "the primary's breaker never opened during the run")
    ok = within_s is None or s.open_delay_s <= within_s
    return Check(name, ok, f"opened {s.open_delay_s:.3f} s after the fault ({s.periods[0].reason})")
