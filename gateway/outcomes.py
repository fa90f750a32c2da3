"""One place that turns a finished call into what is recorded about it.

When the edge has sent a response (or an error), it hands the call, the reply and how it ended
here. From the reply's Notes and stats this module derives, once per request: the cost (the
target's price), the spend metric by team and model, the usage row (``UsageBook``), the
per-request cost alert, and the ``Outcome`` that ``Telemetry.record`` turns into the log line,
the Prometheus metrics and (when tracing is on) the request span's attributes. The HTTP edge only
says how the request ended; it computes nothing itself.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from gateway import notes
from gateway.calls import Call, Reply
from gateway.errors import GatewayError
from gateway.governance.usage import UsageRow
from gateway.telemetry import Outcome, Telemetry, cost_usd

if TYPE_CHECKING:
    from gateway.http.edge import RuntimeHolder

log = logging.getLogger("tiergate.edge")


class Outcomes:
    """Records finished requests for one process (built by the edge, no state of its own)."""

    def __init__(self, holder: RuntimeHolder, telemetry: Telemetry) -> None:
        self._holder = holder
        self._telemetry = telemetry

    def finish(
        self,
        call: Call,
        reply: Reply,
        status: int,
        outcome: str,
        error_kind: str | None,
        started_ns: int,
        ttft_s: float | None,
        overhead_s: float | None,
    ) -> None:
        """A request that got an answer (whole, streamed, cut, or abandoned by its client)."""
        target = attempts = None
        for note in reply.notes:
            if note.key == notes.TARGET:
                target = note.value
            elif note.key == notes.ATTEMPTS:
                attempts = note.value
        stats = reply.stats
        cost = cost_usd(self._telemetry.price(target), stats.prompt_tokens, stats.completion_tokens)
        cost += stats.earlier_usd  # cheaper tiers asked before an escalation
        if cost:
            self._telemetry.spend(call.principal.team, stats.model or "-", cost)
        usage = self._holder.usage
        if usage is not None and (stats.prompt_tokens or stats.completion_tokens):
            row = UsageRow(
                call.principal.key_id,
                call.principal.team,
                call.headers.get("x-tiergate-feature", "-"),
                call.alias,
                stats.model or "-",
            )
            usage.add(row, stats.prompt_tokens, stats.completion_tokens, cost)
        runtime = self._holder.current
        threshold = runtime.rules.governance.alert_request_usd if runtime else None
        if threshold is not None and cost > threshold:
            self._telemetry.alert(
                "request_cost",
                {
                    "request_id": call.request_id,
                    "key_id": call.principal.key_id,
                    "team": call.principal.team,
                    "alias": call.alias,
                    "usd": round(cost, 6),
                    "threshold_usd": threshold,
                },
            )
        self._telemetry.record(
            Outcome(
                request_id=call.request_id,
                key_id=call.principal.key_id,
                alias=call.alias,
                kind=call.kind.value,
                stream=call.stream,
                status=status,
                outcome=outcome,
                error_kind=error_kind,
                target=target,
                model=stats.model,
                attempts=int(attempts) if attempts else 1,
                prompt_tokens=stats.prompt_tokens,
                completion_tokens=stats.completion_tokens,
                cost_usd=cost,
                latency_s=(time.perf_counter_ns() - started_ns) / 1e9,
                ttft_s=ttft_s,
                overhead_s=overhead_s,
                notes=reply.notes,
            )
        )

    def finish_error(
        self, call: Call | None, err: GatewayError, request_id: str, started_ns: int
    ) -> None:
        """A request answered with an error before any answer (``call`` is None when it failed
        before one was built: auth, body, validation)."""
        attempts = len(getattr(err, "attempts", ())) or (0 if call is None else 1)
        if err.detail != err.message:
            # The provider's own text, for operators only; the client got our message.
            log.warning("request %s: %s", request_id, err.detail)
        self._telemetry.record(
            Outcome(
                request_id=request_id,
                key_id=call.principal.key_id if call else "-",
                alias=call.alias if call else "-",
                kind=call.kind.value if call else "-",
                stream=call.stream if call else False,
                status=err.status,
                outcome="error",
                error_kind=err.kind,
                target=None,
                model=None,
                attempts=attempts,
                prompt_tokens=0,
                completion_tokens=0,
                cost_usd=0.0,
                latency_s=(time.perf_counter_ns() - started_ns) / 1e9,
                ttft_s=None,
                overhead_s=None,
                notes=(),
            )
        )
