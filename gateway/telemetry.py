"""The one place where what happened to a request becomes headers, a log line and metrics.

Stages record ``Note``s; the edge builds one ``Outcome`` per request when it has finished. From
those this module derives the ``x-tiergate-*`` response headers, one structured JSON log line
(never prompt text unless configured) and the Prometheus metrics served on ``/metrics``.
Metric label children are cached per label tuple so a request pays a dict lookup, not a
``labels()`` call, per metric.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway import notes as note_keys
from gateway.calls import Note
from gateway.log_tail import LogTail
from gateway.request_log import LineWriter
from gateway.rules import Price

# Notes that become response headers, as x-tiergate-<key>. Others stay in logs and metrics only.
HEADER_NOTES = frozenset(
    {
        note_keys.TARGET,
        note_keys.ATTEMPTS,
        note_keys.FAILED,
        note_keys.HEDGED,
        note_keys.CACHE,
        note_keys.CACHE_AGE,
        note_keys.SIMILARITY,
        note_keys.IDEMPOTENT_REPLAY,
        note_keys.DEGRADED,
        note_keys.TIER,
        note_keys.ESCALATED,
    }
)

# Router and escalation notes, as request log fields (tier served, why, scores, data classes).
ROUTING_LOG_NOTES = {
    "tier": "tier",
    "escalated": "escalated",
    "escalation": "escalation",
    "route-reason": "route_reason",
    "route-score": "route_score",
    "data-class": "data_class",
}

LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
)
TAIL_RECORDS = 1000  # request log records kept in memory for the dashboard
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything the log line and the metrics need about one finished request."""

    request_id: str
    key_id: str
    alias: str
    kind: str
    stream: bool
    status: int
    outcome: str  # ok | error | client_disconnected | stream_error
    error_kind: str | None
    target: str | None
    model: str | None
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    ttft_s: float | None
    overhead_s: float | None
    notes: tuple[Note, ...]


def response_headers(
    notes: Iterable[Note], model: str | None, config_version: str, overhead_ms: float
) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    failed: list[str] = []
    for note in notes:
        if note.key == note_keys.FAILED:
            failed.append(note.value)
        elif note.key.startswith(note_keys.RATE_LIMIT_PREFIX):
            headers.append((note.key.encode(), note.value.encode()))
        elif note.key in HEADER_NOTES:
            headers.append((b"x-tiergate-" + note.key.encode(), note.value.encode()))
    if failed:
        headers.append((b"x-tiergate-failed", ",".join(failed).encode()))
    if model:
        headers.append((b"x-tiergate-model", model.encode()))
    headers.append((b"x-tiergate-config-version", config_version.encode()))
    headers.append((b"x-tiergate-overhead-ms", f"{overhead_ms:.3f}".encode()))
    return headers


def cost_usd(price: Price | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    return (
        prompt_tokens * price.input_usd_per_mtok + completion_tokens * price.output_usd_per_mtok
    ) / 1_000_000


class Telemetry:
    """Owns the metrics registry and the request logger of one gateway process."""

    def __init__(
        self, prices: Mapping[str, Price], request_log: bool, stream: TextIO | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._prices = dict(prices)
        # The request log is written straight to stdout, one JSON line per call, without the
        # logging module (about 8% of the hot path's CPU when it went through a Logger), the
        # lines of one event-loop turn in one write (gateway.request_log).
        self._log: LineWriter | None = LineWriter(stream or sys.stdout) if request_log else None
        # Only when tracing is on (gateway.tracing): each Outcome onto its request span.
        self.on_outcome: Callable[[Outcome], None] | None = None
        # Where alerts go after the log and the metric (the webhook), set in the lifespan.
        self.forward_alert: Callable[[str, dict[str, object]], None] | None = None
        r = self.registry
        self._requests = Counter(
            "tiergate_requests", "Requests finished", ["alias", "target", "status"], registry=r
        )
        self._latency = Histogram(
            "tiergate_request_latency_seconds",
            "Request latency, end to end",
            ["alias", "target"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._ttft = Histogram(
            "tiergate_time_to_first_token_seconds",
            "Time to the first streamed chunk",
            ["alias", "target"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._overhead = Histogram(
            "tiergate_gateway_overhead_seconds",
            "Time spent in the gateway, not upstream",
            buckets=OVERHEAD_BUCKETS_S,
            registry=r,
        )
        self._tokens = Counter(
            "tiergate_tokens", "Tokens", ["alias", "target", "direction"], registry=r
        )
        self._cost = Counter("tiergate_cost_usd", "Spend in USD", ["alias", "target"], registry=r)
        self._spend = Counter(
            "tiergate_spend_usd", "Spend in USD by team and model", ["team", "model"], registry=r
        )
        self._spend_children: dict[tuple[str, str], Any] = {}
        self._errors = Counter("tiergate_errors", "Errors by kind", ["kind"], registry=r)
        self._attempt_failures = Counter(
            "tiergate_target_failures", "Failed attempts per target", ["target", "kind"], registry=r
        )
        self._children: dict[tuple[str, ...], tuple[object, ...]] = {}
        self._transitions = Counter(
            "tiergate_breaker_transitions",
            "Circuit breaker state changes",
            ["target", "to"],
            registry=r,
        )
        self._breaker_open = Gauge(
            "tiergate_breaker_open",
            "1 while the target's breaker is open or half-open",
            ["target"],
            registry=r,
        )
        self._fallbacks = Counter(
            "tiergate_fallbacks",
            "Requests answered by a target after another failed",
            ["alias", "target"],
            registry=r,
        )
        self._hedges = Counter("tiergate_hedges", "Hedged requests started", ["alias"], registry=r)
        self._alerts = Counter("tiergate_alerts", "Cost and usage alerts", ["kind"], registry=r)
        self._queue_wait = Histogram(
            "tiergate_queue_wait_seconds",
            "Time calls waited for a target with capacity",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._cache = Counter(
            "tiergate_cache",
            "Cache outcomes (hit, miss, bypass, stale, semantic_hit; semantic: miss, veto, ...)",
            ["alias", "layer", "outcome"],
            registry=r,
        )
        self._cache_children: dict[tuple[str, str, str], Any] = {}
        self._verified = Counter(
            "tiergate_semantic_verified",
            "Sampled semantic hits checked against a fresh answer (agree / disagree)",
            ["alias", "outcome"],
            registry=r,
        )
        self._semantic_cut = Gauge(
            "tiergate_semantic_cut",
            "The verifier cut an alias's false-hit bound has learned (max_false_hit_rate)",
            ["alias"],
            registry=r,
        )
        self._queue_length = Gauge(
            "tiergate_queue_waiting",
            "Calls waiting in the capacity queue for a target with capacity",
            registry=r,
        )
        self._tiers = Counter(
            "tiergate_tier_served",
            "Requests answered per tier of an alias (router start plus escalations)",
            ["alias", "tier"],
            registry=r,
        )
        self._escalations = Counter(
            "tiergate_escalations",
            "Escalations to a stronger tier, by the gate (or outage) that caused them",
            ["alias", "reason"],
            registry=r,
        )
        self._route_reasons = Counter(
            "tiergate_router_decisions",
            "How the starting tier was chosen (learned, rules, header, feature, fixed, ...)",
            ["alias", "reason"],
            registry=r,
        )
        self._budget_used = Gauge(
            "tiergate_budget_used_ratio",
            "How full each budget the rules declare is: (used + reserved) / limit",
            ["scope", "unit", "period"],
            registry=r,
        )
        self._reloads = Counter(
            "tiergate_config_reloads",
            "Rules reloads (SIGHUP or file change): ok, or rejected (old rules kept)",
            ["outcome"],
            registry=r,
        )
        # The dashboard's live tail: the same records as the log, also when the log is off.
        self.tail = LogTail(TAIL_RECORDS, self._tail_record)
        self._retry_budget_refusals = Counter(
            "tiergate_retry_budget_refusals", "Attempts refused by the retry budget", registry=r
        )

    def alert(self, kind: str, details: dict[str, object]) -> None:
        """A cost anomaly or similar: a metric, one structured log line, and the webhook."""
        self._alerts.labels(kind).inc()
        if self._log is not None:
            line = {"event": "alert", "kind": kind, **details}
            self._log.write(orjson.dumps(line).decode() + "\n")
        if self.forward_alert is not None:
            self.forward_alert(kind, details)

    def breaker_transition(self, target: str, old: str, new: str, reason: str) -> None:
        """A breaker changed state: a metric and one structured log line (never prompt text)."""
        self._transitions.labels(target, str(new)).inc()
        self._breaker_open.labels(target).set(0 if str(new) == "closed" else 1)
        if self._log is not None:
            line = {
                "event": "breaker",
                "target": target,
                "from": str(old),
                "to": str(new),
                "reason": reason,
            }
            self._log.write(orjson.dumps(line).decode() + "\n")
        self.tail.add({"event": "breaker", "target": target, "from": str(old), "to": str(new)})

    def _tail_record(self, record: Outcome | dict[str, Any]) -> dict[str, Any]:
        if isinstance(record, Outcome):
            rendered: dict[str, Any] = orjson.loads(self.log_line(record))
            return rendered
        return record

    def budget_use(self, fills: Mapping[tuple[str, str, str], float]) -> None:
        """Replace the budget gauge's values (a budget the rules dropped disappears)."""
        self._budget_used.clear()
        for (scope, unit, period), ratio in fills.items():
            self._budget_used.labels(scope, unit, period).set(ratio)

    def reloaded(self, ok: bool) -> None:
        self._reloads.labels("ok" if ok else "rejected").inc()

    def spend(self, team: str, model: str, usd: float) -> None:
        """Spend by team and real model (the dashboard's cost panel); label children cached."""
        key = (team, model)
        child = self._spend_children.get(key)
        if child is None:
            child = self._spend_children[key] = self._spend.labels(team, model)
        child.inc(usd)

    def use_prices(self, prices: Mapping[str, Price]) -> None:
        """Called when new rules are loaded; one reference swap."""
        self._prices = dict(prices)

    def price(self, target: str | None) -> Price | None:
        return self._prices.get(target) if target else None

    def record(self, o: Outcome) -> None:
        target = o.target or "-"
        key = (o.alias, target, str(o.status))
        kids = self._children.get(key)
        if kids is None:
            kids = (
                self._requests.labels(o.alias, target, str(o.status)),
                self._latency.labels(o.alias, target),
                self._ttft.labels(o.alias, target),
                self._tokens.labels(o.alias, target, "in"),
                self._tokens.labels(o.alias, target, "out"),
                self._cost.labels(o.alias, target),
            )
            self._children[key] = kids
        requests, latency, ttft, tokens_in, tokens_out, cost = kids
        requests.inc()  # type: ignore[attr-defined]
        latency.observe(o.latency_s)  # type: ignore[attr-defined]
        if o.ttft_s is not None:
            ttft.observe(o.ttft_s)  # type: ignore[attr-defined]
        if o.overhead_s is not None:
            self._overhead.observe(o.overhead_s)
        if o.prompt_tokens:
            tokens_in.inc(o.prompt_tokens)  # type: ignore[attr-defined]
        if o.completion_tokens:
            tokens_out.inc(o.completion_tokens)  # type: ignore[attr-defined]
        if o.cost_usd:
            cost.inc(o.cost_usd)  # type: ignore[attr-defined]
        if o.error_kind:
            self._errors.labels(o.error_kind).inc()
        failed = False
        for note in o.notes:
            if note.key == note_keys.FAILED:
                failed = True
                failed_target, _, kind = note.value.partition(":")
                self._attempt_failures.labels(failed_target, kind).inc()
            elif note.key == note_keys.HEDGED:
                self._hedges.labels(o.alias).inc()
            elif note.key == note_keys.RETRY_BUDGET:
                self._retry_budget_refusals.inc()
            elif note.key == note_keys.QUEUED_MS:
                self._queue_wait.observe(float(note.value) / 1000)
            elif note.key in (note_keys.CACHE, note_keys.SEMANTIC, note_keys.SEMANTIC_VETO):
                self._count_cache(o.alias, note)
            elif note.key == "tier":
                self._tiers.labels(o.alias, note.value).inc()
            elif note.key == "escalated":
                for reason in note.value.split(","):
                    self._escalations.labels(o.alias, reason).inc()
            elif note.key == "route-reason":
                self._route_reasons.labels(o.alias, note.value).inc()
        if failed and o.target is not None:
            self._fallbacks.labels(o.alias, o.target).inc()
        self.tail.add(o)
        if self._log is not None:
            self._log.write(self.log_line(o) + "\n")
        if self.on_outcome is not None:
            self.on_outcome(o)

    def watch_queue(self, length: Callable[[], int]) -> None:
        """Read the capacity queue's length when metrics are scraped (nothing per call)."""
        self._queue_length.set_function(length)

    def semantic_verified(self, alias: str, agreed: bool, similarity: float) -> None:
        """A sampled semantic hit was compared with a fresh answer (background, not per call)."""
        self._verified.labels(alias, "agree" if agreed else "disagree").inc()
        if self._log is not None:
            line = {
                "event": "semantic_verified",
                "alias": alias,
                "agreed": agreed,
                "similarity": round(similarity, 4),
            }
            self._log.write(orjson.dumps(line).decode() + "\n")

    def semantic_cut(self, alias: str, cut: float) -> None:
        """An alias's learned semantic cut was set or moved (background, not per call)."""
        self._semantic_cut.labels(alias).set(cut)

    def _count_cache(self, alias: str, note: Note) -> None:
        if note.key == note_keys.CACHE:
            layer, outcome = "exact", note.value
            if outcome == "semantic_hit":
                layer = "semantic"
        elif note.key == note_keys.SEMANTIC_VETO:
            layer, outcome = "semantic", "veto"
        else:
            layer, outcome = "semantic", note.value.partition(":")[0]
        key = (alias, layer, outcome)
        child = self._cache_children.get(key)
        if child is None:
            child = self._cache_children[key] = self._cache.labels(*key)
        child.inc()

    def flush(self) -> None:
        if self._log is not None:
            self._log.flush()

    @staticmethod
    def log_line(o: Outcome) -> str:
        failed: list[str] = []
        gates: list[str] = []
        cache = similarity = surface = None
        routing: dict[str, str] = {}
        for note in o.notes:  # one pass over the notes
            if note.key == note_keys.FAILED:
                failed.append(note.value)
            elif note.key == note_keys.CACHE:
                cache = note.value
            elif note.key == note_keys.SIMILARITY:
                similarity = note.value
            elif note.key == "gate":
                gates.append(note.value)
            elif note.key in ROUTING_LOG_NOTES:
                routing[ROUTING_LOG_NOTES[note.key]] = note.value
            elif note.key == "surface":
                surface = note.value
        line = {
            "event": "request",
            "request_id": o.request_id,
            "key_id": o.key_id,
            "alias": o.alias,
            "kind": o.kind,
            "stream": o.stream,
            "status": o.status,
            "outcome": o.outcome,
            "error": o.error_kind,
            "target": o.target,
            "model": o.model,
            "attempts": o.attempts,
            "tokens_in": o.prompt_tokens,
            "tokens_out": o.completion_tokens,
            "cost_usd": round(o.cost_usd, 8),
            "latency_ms": round(o.latency_s * 1000, 3),
            "ttft_ms": None if o.ttft_s is None else round(o.ttft_s * 1000, 3),
            "overhead_ms": None if o.overhead_s is None else round(o.overhead_s * 1000, 3),
            "failed": failed or None,
            "cache": cache,
        }
        if similarity is not None:
            line["similarity"] = float(similarity)
        if routing:
            line.update(routing)
        if gates:
            line["gates"] = gates
        if surface is not None:  # a translated client API (responses, messages, completions)
            line["surface"] = surface
        return orjson.dumps(line).decode()
