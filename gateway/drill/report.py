"""The drill report: one block per scenario, then one JSON line (the last line printed).

A scenario passes when every check it could judge passed (SKIP: could not be judged here, e.g.
breakers without the admin API) and the run itself did not fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway.drill.endpoints import Topology
from gateway.drill.figures import Check, Evidence, Summary, ms, secs
from gateway.drill.session import Settings


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    checks: Sequence[Check] = ()
    summary: Summary | None = None
    evidence: Evidence | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and bool(self.checks)
            and all(c.passed is not False for c in self.checks)
        )

    def check(self, name_start: str) -> Check:
        """The check whose name starts with ``name_start`` (for tests and scripts)."""
        for c in self.checks:
            if c.name.startswith(name_start):
                return c
        raise KeyError(name_start)


def header(gateway: str, sim: str, topo: Topology, settings: Settings) -> list[str]:
    chain = " -> ".join(f"{t.name} ({t.model})" for t in topo.targets)
    lines = [
        f"tiergate drill: gateway {gateway}, sim {sim}, config {topo.config_version or '?'}",
        f"alias {topo.alias}: {chain}",
        f"load: {settings.rate:g} req/s open loop for {settings.duration_s:g} s per scenario "
        f"(warm-up {settings.warmup_s:g} s)",
    ]
    lines += [f"assumption: {a}" for a in topo.assumptions()]
    return lines


def _label(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "SKIP"}[passed]


def _breaker_line(ev: Evidence, s: Summary) -> str:
    primary = ev.topology.primary.name
    if not ev.admin:
        return f"breaker {primary}: not watched (no admin key)"
    if not s.periods:
        return f"breaker {primary}: never opened"
    first = s.periods[0]
    opened = f"opened {secs(s.open_delay_s)} after the fault ({first.reason or '?'})"
    reopens = len(s.periods) - 1
    if s.closed_after_s is not None:
        closed = f"closed {secs(s.closed_after_s)} after the fault ended"
    else:
        closed = "still open or half-open at the end of the run"
    open_s = first.open_s
    length = "" if open_s is None else f", open time {open_s:.2f} s"
    return f"breaker {primary}: {opened}{length}; {reopens} re-open(s) after probes; {closed}"


def render(result: ScenarioResult) -> list[str]:
    verdict = "PASS" if result.passed else "FAIL"
    ev, s = result.evidence, result.summary
    if ev is None or s is None:
        return [f"== {result.name}: {verdict}", f"   error: {result.error}"]
    faults = ", ".join(f"{f.kind} on {f.model}" for f in ev.faults)
    lines = [
        f"== {result.name}: {verdict}",
        f"   fault: {faults} from {ev.fault_on_s:.2f} s to {ev.fault_off_s:.2f} s "
        f"of a {ev.run_s:.2f} s run",
        f"   requests: {s.sent} sent, {ev.load.not_sent} not sent, {ev.load.late} late; "
        f"success {s.success_rate:.2%}; latency p50 {ms(s.p50_s)}, p99 {ms(s.p99_s)}"
        + ("" if ev.baseline_p99_s is None else f" (secondary's own p99 {ms(ev.baseline_p99_s)})"),
        f"   statuses: {dict(sorted(s.statuses.items()))}; served by: {dict(s.served_by)}",
        f"   upstream calls: {s.calls_total} ({s.calls_per_request or 0:.3f} per request): "
        + ", ".join(f"{m} {n}" for m, n in ev.upstream_calls.items()),
        f"   attempts per request: mean {s.attempts_mean or 0:.3f}, max {s.attempts_max or 0}; "
        f"hung (past {ev.deadline_s:g} s): {s.hung}",
    ]
    if ev.stream:
        lines.append(
            f"   streams: {dict(s.stream_ends)}; first token p99 {ms(s.ttft_p99_s)}, "
            f"max {ms(s.ttft_max_s)}"
        )
    lines.append("   " + _breaker_line(ev, s))
    lines += [f"   note: {n}" for n in ev.notes]
    lines += [f"   [{_label(c.passed)}] {c.name}: {c.detail}" for c in result.checks]
    return lines


def final_line(results: Sequence[ScenarioResult]) -> str:
    failed = [r.name for r in results if not r.passed]
    body = {"scenarios": len(results), "passed": len(results) - len(failed), "failed": failed}
    return orjson.dumps(body).decode()
