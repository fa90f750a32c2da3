"""Which fault (if any) hits a request, and how long the answer takes.

Policy: a request's fault is looked up in a fixed order and the first rule that fires wins:
(1) the ``x-sim-fault`` header, (2) runtime rules from ``/_sim/faults`` in the order they were
added, (3) the model's configured ``faults``. A rule fires with probability ``rate``; a runtime
rule with ``count`` is removed after firing that many times, so a drill can say "fail the next
three calls". Faults are drawn before rate limits are charged: a provider that is down does not
count the request against the caller's quota.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import NamedTuple

from pydantic import ValidationError

from gateway.sim.config import FaultKind, FaultRule, ModelBehaviour, RuntimeFaultRule

Roll = Callable[[], float]

H_LATENCY = b"x-sim-latency-ms"
H_TTFT = b"x-sim-ttft-ms"
H_TOKENS_PER_S = b"x-sim-tokens-per-s"
H_COMPLETION_TOKENS = b"x-sim-completion-tokens"
H_FAULT = b"x-sim-fault"
H_FAULT_RATE = b"x-sim-fault-rate"
H_RETRY_AFTER = b"x-sim-retry-after"
H_AFTER_CHUNKS = b"x-sim-after-chunks"
HEADER_PREFIX = b"x-sim-"
SLOW_FIRST_TOKEN_MS = 5000.0


class Overrides(NamedTuple):
    """Per-request behaviour from ``x-sim-*`` headers."""

    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    fault: FaultRule | None = None


NO_OVERRIDES = Overrides()


class Timing(NamedTuple):
    latency_s: float  # whole answer, non-streaming
    ttft_s: float  # until the first content chunk, streaming
    gap_s: float  # between content chunks, streaming


def _number(headers: Mapping[bytes, bytes], name: bytes) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        text = raw.decode(errors="replace")
        raise ValueError(f"header {name.decode()}: expected a number >= 0, got {text!r}")
    return value


def read_overrides(headers: Mapping[bytes, bytes]) -> Overrides:
    """Parse the ``x-sim-*`` headers; raises ValueError naming the bad header."""
    if not headers:
        return NO_OVERRIDES
    tokens = _number(headers, H_COMPLETION_TOKENS)
    ttft_ms = _number(headers, H_TTFT)
    fault = None
    kind = headers.get(H_FAULT)
    if kind is not None:
        rate = _number(headers, H_FAULT_RATE)
        retry = _number(headers, H_RETRY_AFTER)
        after = _number(headers, H_AFTER_CHUNKS)
        try:
            fault = FaultRule(
                fault=FaultKind(kind.decode().strip().lower()),
                rate=1.0 if rate is None else rate,
                retry_after_s=1.0 if retry is None else retry,
                ttft_ms=SLOW_FIRST_TOKEN_MS if ttft_ms is None else ttft_ms,
                after_chunks=2 if after is None else int(after),
            )
        except (ValueError, ValidationError) as exc:
            choices = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"header x-sim-fault: expected one of {choices}") from exc
    return Overrides(
        latency_ms=_number(headers, H_LATENCY),
        ttft_ms=ttft_ms,
        tokens_per_s=_number(headers, H_TOKENS_PER_S),
        completion_tokens=None if tokens is None else max(1, int(tokens)),
        fault=fault,
    )


def fires(rule: FaultRule, roll: Roll) -> bool:
    return rule.rate >= 1.0 or (rule.rate > 0.0 and roll() < rule.rate)


def first_firing(rules: Iterable[FaultRule], roll: Roll) -> FaultRule | None:
    return next((rule for rule in rules if fires(rule, roll)), None)


def plan_timing(
    behaviour: ModelBehaviour, overrides: Overrides, fault: FaultRule | None, jitter_ms: float
) -> Timing:
    """Pauses for one answer: header values beat the model's, a slow-first-token fault adds."""
    latency_ms = overrides.latency_ms if overrides.latency_ms is not None else behaviour.latency_ms
    ttft_ms = overrides.ttft_ms if overrides.ttft_ms is not None else behaviour.ttft_ms
    pace = overrides.tokens_per_s if overrides.tokens_per_s is not None else behaviour.tokens_per_s
    if fault is not None and fault.fault is FaultKind.SLOW_FIRST_TOKEN:
        ttft_ms = max(ttft_ms, fault.ttft_ms)
        latency_ms += fault.ttft_ms
    return Timing(
        latency_s=(latency_ms + jitter_ms) / 1000.0,
        ttft_s=(ttft_ms + jitter_ms) / 1000.0,
        gap_s=1.0 / pace if pace > 0 else 0.0,
    )


@dataclass(slots=True)
class _Entry:
    id: int
    rule: RuntimeFaultRule
    remaining: int | None
    fired: int = 0

    def view(self) -> dict[str, object]:
        data = self.rule.model_dump(mode="json")
        data.update(id=self.id, remaining=self.remaining, fired=self.fired)
        return data


@dataclass(slots=True)
class FaultBook:
    """Runtime fault rules (``/_sim/faults``); lives on the server object, one per sim."""

    _entries: list[_Entry] = field(default_factory=list)
    _next_id: int = 1

    def add(self, rule: RuntimeFaultRule) -> dict[str, object]:
        entry = _Entry(self._next_id, rule, rule.count)
        self._next_id += 1
        self._entries.append(entry)
        return entry.view()

    def clear(self, model: str | None = None, rule_id: int | None = None) -> int:
        """Remove rules (all, those for ``model``, or one by id); returns how many went."""
        before = len(self._entries)
        self._entries = [
            e
            for e in self._entries
            if not ((model is None or e.rule.model == model) and rule_id in (None, e.id))
        ]
        return before - len(self._entries)

    def listing(self) -> list[dict[str, object]]:
        return [entry.view() for entry in self._entries]

    def draw(self, model: str, roll: Roll) -> FaultRule | None:
        """The first runtime rule for ``model`` that fires, charging its count."""
        if not self._entries:
            return None
        for entry in self._entries:
            pattern = entry.rule.model
            if pattern not in ("*", model) and not fnmatchcase(model, pattern):
                continue
            if not fires(entry.rule, roll):
                continue
            entry.fired += 1
            if entry.remaining is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._entries.remove(entry)
            return entry.rule
        return None
