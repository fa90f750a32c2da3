"""The fault drills: what each scenario breaks, when, and what it must show (issue 3, section 7
and "Figures to reach").

Every scenario drives open-loop traffic at the alias for the whole run and switches its faults on
at ``on_at`` and off at ``off_at`` (fractions of the run), through the sim's runtime fault API,
on the models of the targets it names (each target asks the sim for its own model, so a fault
hits one target only). Judges are pure: ``Evidence`` in, ``Check``s out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.drill.endpoints import Topology
from gateway.drill.figures import (
    Check,
    Evidence,
    FaultPlan,
    Summary,
    check_breaker_opened,
    check_budget,
    check_no_hung,
    check_success,
    ms,
    percentile,
)
from gateway.drill.probes import calls_between

OPEN_WITHIN_S = 1.0  # primary-down: the breaker opens within this of the outage
CALLS_PER_REQUEST_MAX = 1.1  # primary-down: upstream calls per request over the run
P99_MARGIN_S = 0.050  # primary-down: p99 within this of the secondary's own
ALL_DOWN_MARGIN_S = 0.100  # all-down: 503 in under timeout + this
RECOVERY_ANSWER_S = 0.1  # primary-recovers: the probe's own answer time, on top of 1/rate
SLOW_TTFT_EXTRA_S = 2.0  # slow-first-token: the injected first token comes this much past
TTFT_MARGIN_S = 1.0  # slow-first-token: clients wait at most first_token_s + this

Faults = Callable[[Topology], list[FaultPlan]]
Judge = Callable[[Evidence, Summary], list[Check]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    what: str  # one line for the report and the docs
    stream: bool
    on_at: float  # fault on at this fraction of the run
    off_at: float  # and off at this one
    faults: Faults
    judge: Judge
    flap: bool = False  # toggle the faults on and off every flap period while on
    until_recovered: bool = False  # after off_at, run until the primary serves again
    baseline: bool = False  # measure the secondary's own p99 first


def on_primary(kind: str, **params: float) -> Faults:
    return lambda topo: [FaultPlan(topo.primary.model, kind, params)]


def on_every_target(topo: Topology) -> list[FaultPlan]:
    if not topo.complete:  # discovered without the admin API: some targets may be unknown
        return [FaultPlan("*", "503", {})]
    return [FaultPlan(model, "503", {}) for model in topo.models]


def slow_first_token(topo: Topology) -> list[FaultPlan]:
    ttft_ms = (topo.primary.timeouts.first_token_s + SLOW_TTFT_EXTRA_S) * 1000.0
    return [FaultPlan(topo.primary.model, "slow-first-token", {"ttft_ms": ttft_ms})]


def in_window(ev: Evidence, margin_s: float = 0.0) -> list[float]:
    """Latencies of the requests scheduled while the fault was on."""
    start, end = ev.fault_on_s + margin_s, ev.fault_off_s
    return [o.latency_s for o in ev.load.outcomes if start <= o.scheduled_s < end]


# ------------------------------------------------------------------------------ judges
def judge_primary_down(ev: Evidence, s: Summary) -> list[Check]:
    checks = [check_success(s), check_breaker_opened(ev, s, OPEN_WITHIN_S)]
    name = "once open, only half-open probes reach the primary"
    if not ev.admin:
        checks.append(Check(name, None, "no admin key: breakers not watched"))
    elif not s.periods:
        checks.append(Check(name, False, "the breaker never opened"))
    else:
        start, end = s.periods[0].seen_s, ev.fault_off_s
        calls = calls_between(ev.samples, ev.topology.primary.model, start, end)
        opens = [p for p in s.periods if p.seen_s <= end]
        allowed = len(opens) * ev.topology.budget.half_open_probes
        checks.append(
            Check(
                name,
                calls <= allowed,
                f"{calls} calls reached the primary from {start:.2f} s to {end:.2f} s; "
                f"{len(opens)} open period(s) allow {allowed} probe(s)",
            )
        )
    per = s.calls_per_request
    checks.append(
        Check(
            f"upstream calls per request <= {CALLS_PER_REQUEST_MAX:g}",
            per is not None and per <= CALLS_PER_REQUEST_MAX,
            f"{s.calls_total} calls / {s.sent} requests = {per or 0:.3f}",
        )
    )
    p99 = percentile(in_window(ev), 99)
    base = ev.baseline_p99_s
    name = f"p99 within {P99_MARGIN_S * 1000:g} ms of the secondary's own"
    if base is None or p99 is None:
        checks.append(Check(name, None, "no baseline for the secondary"))
    else:
        checks.append(
            Check(
                name,
                p99 <= base + P99_MARGIN_S,
                f"p99 during the outage {ms(p99)}, secondary's own {ms(base)}",
            )
        )
    checks.append(check_no_hung(ev, s))
    return checks


def judge_primary_hang(ev: Evidence, s: Summary) -> list[Check]:
    return [check_no_hung(ev, s), check_success(s)]


def judge_429_storm(ev: Evidence, s: Summary) -> list[Check]:
    seen = s.statuses.get(429, 0)
    return [
        Check("zero client-visible 429s", seen == 0, f"{seen} answers were 429"),
        check_success(s),
        check_budget(ev, s),
    ]


def judge_slow_first_token(ev: Evidence, s: Summary) -> list[Check]:
    slow_ms = ev.faults[0].params.get("ttft_ms", 0.0) if ev.faults else 0.0
    first_token_s = ev.topology.primary.timeouts.first_token_s
    bound = first_token_s + TTFT_MARGIN_S
    worst = s.ttft_max_s
    return [
        check_success(s),
        Check(
            "no client waits for the slow first token",
            worst is not None and worst * 1000.0 < slow_ms,
            f"slowest first token {ms(worst)} (p99 {ms(s.ttft_p99_s)}); injected {slow_ms:.0f} ms",
        ),
        Check(
            f"first token within first_token_s + {TTFT_MARGIN_S:g} s ({bound:g} s)",
            worst is not None and worst <= bound,
            f"slowest first token {ms(worst)}",
        ),
        check_no_hung(ev, s),
    ]


def judge_mid_stream_disconnect(ev: Evidence, s: Summary) -> list[Check]:
    ends = s.stream_ends
    truncated, errors = ends.get("truncated", 0), ends.get("error", 0)
    return [
        Check(
            "no truncated answer presented as complete",
            truncated == 0,
            f"stream ends {dict(ends)} (truncated: no [DONE] and no error event, or [DONE] "
            "without a finish reason)",
        ),
        Check(
            "the client receives an error event and a clean end of stream",
            errors > 0,
            f"{errors} streams ended with an error event and no [DONE]",
        ),
        check_no_hung(ev, s),
    ]


def judge_flapping(ev: Evidence, s: Summary) -> list[Check]:
    return [check_success(s), check_budget(ev, s), check_no_hung(ev, s)]


def judge_all_down(ev: Evidence, s: Summary) -> list[Check]:
    # From once the last target's fault is set: they are set one after the other.
    start, end = max(ev.fault_on_s, ev.fault_full_s) + 0.1, ev.fault_off_s - 0.05
    during = [o for o in ev.load.outcomes if start <= o.scheduled_s < end]
    stale = [o for o in during if o.status == 200 and o.cache == "stale"]
    refused = [o for o in during if o.status == 503]
    all_503 = [o for o in ev.load.outcomes if o.status == 503]
    bare = [o for o in all_503 if not o.retry_after]
    timeout_s = ev.topology.primary.timeouts.total_s
    slowest = max((o.service_s for o in all_503), default=None)
    return [
        Check(
            "503 (or a stale answer) for every request during the outage",
            bool(during) and len(refused) + len(stale) == len(during),
            f"{len(refused)} x 503, {len(stale)} stale, of {len(during)} requests in the outage",
        ),
        Check("every 503 carries Retry-After", bool(all_503) and not bare, f"{len(bare)} without"),
        Check(
            f"503 in under timeout + {ALL_DOWN_MARGIN_S * 1000:g} ms",
            slowest is not None and slowest < timeout_s + ALL_DOWN_MARGIN_S,
            f"slowest 503 {ms(slowest)}; the primary's total timeout {timeout_s:g} s",
        ),
        check_no_hung(ev, s),
    ]


def judge_primary_recovers(ev: Evidence, s: Summary) -> list[Check]:
    primary = ev.topology.primary.name
    back = [o for o in ev.load.outcomes if o.ok and o.target == primary]
    back = [o for o in back if o.scheduled_s >= ev.fault_off_s]
    returned = min((o.end_s for o in back), default=None)
    name = "traffic returns to the primary within open time + one probe interval"
    checks = [check_success(s)]
    if returned is None:
        checks.append(Check(name, False, "the primary served nothing after the recovery"))
    elif not ev.admin or not s.periods:
        detail = f"back {returned - ev.fault_off_s:.2f} s after the recovery"
        checks.append(Check(name, None, detail + " (no breaker open time to compare with)"))
    else:
        off_epoch = ev.epoch_t0 + ev.fault_off_s
        before = [p for p in s.periods if p.opened_at <= off_epoch] or list(s.periods[:1])
        open_s = before[-1].open_s or 0.0
        slack = 1.0 / ev.rate + RECOVERY_ANSWER_S
        bound = ev.fault_off_s + open_s + slack
        checks.append(
            Check(
                name,
                returned <= bound,
                f"back {returned - ev.fault_off_s:.2f} s after the recovery; open time "
                f"{open_s:.2f} s + probe interval {slack:.2f} s",
            )
        )
    return checks


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "primary-down",
            "the primary answers 503 in the middle of the run",
            False,
            0.2,
            0.8,
            on_primary("503"),
            judge_primary_down,
            baseline=True,
        ),
        Scenario(
            "primary-hang",
            "the primary reads requests and never answers",
            False,
            0.2,
            0.8,
            on_primary("hang"),
            judge_primary_hang,
        ),
        Scenario(
            "429-storm",
            "the primary answers 429 with Retry-After: 1",
            False,
            0.2,
            0.8,
            on_primary("429", retry_after_s=1.0),
            judge_429_storm,
        ),
        Scenario(
            "slow-first-token",
            "streams: the primary's first token comes after its first-token timeout",
            True,
            0.2,
            0.8,
            slow_first_token,
            judge_slow_first_token,
        ),
        Scenario(
            "mid-stream-disconnect",
            "streams: the primary cuts the connection after two chunks",
            True,
            0.2,
            0.8,
            on_primary("disconnect", after_chunks=2),
            judge_mid_stream_disconnect,
        ),
        Scenario(
            "flapping-primary",
            "the primary's 503s toggle on and off every ~2 s",
            False,
            0.1,
            0.9,
            on_primary("503"),
            judge_flapping,
            flap=True,
        ),
        Scenario(
            "all-down",
            "every target of the alias answers 503",
            False,
            0.2,
            0.8,
            on_every_target,
            judge_all_down,
        ),
        Scenario(
            "primary-recovers",
            "the primary is down, then healthy again",
            False,
            0.15,
            0.4,
            on_primary("503"),
            judge_primary_recovers,
            until_recovered=True,
        ),
    )
}
SCENARIO_NAMES: Sequence[str] = tuple(SCENARIOS)
