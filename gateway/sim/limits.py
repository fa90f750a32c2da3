"""Provider-side rate limits (RPM and TPM) and the headers that report them.

Policy: each limit is a token bucket holding one minute's allowance and refilling continuously
(limit / 60 per second), which is how OpenAI describes its limits. A request is admitted only if
both buckets can pay (1 request, and prompt + completion tokens); otherwise nothing is charged
and the caller is told when enough will have refilled (``Retry-After``). Unknown models share
the ``default`` entry's buckets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple

Measure = Literal["requests", "tokens"]
WINDOW_S = 60.0
_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def refilled(level: float, capacity: float, per_s: float, elapsed_s: float) -> float:
    return min(capacity, level + per_s * max(0.0, elapsed_s))


def wait_for(level: float, amount: float, per_s: float) -> float:
    """Seconds until the bucket holds ``amount`` (0 if it already does)."""
    return 0.0 if level >= amount else (amount - level) / per_s


def format_reset(seconds: float) -> str:
    """OpenAI's reset notation: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1.0:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60.0:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}m{round(rest, 3):g}s"


@dataclass(slots=True)
class Bucket:
    limit: int
    level: float
    stamp: float

    @classmethod
    def full(cls, limit: int, now: float) -> Bucket:
        return cls(limit, float(limit), now)

    @property
    def per_s(self) -> float:
        return self.limit / WINDOW_S

    def settle(self, now: float) -> None:
        self.level = refilled(self.level, self.limit, self.per_s, now - self.stamp)
        self.stamp = now

    def reset_s(self) -> float:
        return (self.limit - self.level) / self.per_s


class Admission(NamedTuple):
    admitted: bool
    headers: tuple[tuple[str, str], ...]  # x-ratelimit-* pairs, OpenAI names
    refused_by: Measure | None = None
    limit: int = 0
    retry_after_s: float = 0.0


@dataclass(slots=True)
class ModelLimiter:
    """The RPM and TPM buckets of one configured model entry."""

    requests: Bucket | None
    tokens: Bucket | None

    @classmethod
    def create(cls, rpm: int | None, tpm: int | None, now: float) -> ModelLimiter | None:
        if rpm is None and tpm is None:
            return None
        return cls(
            Bucket.full(rpm, now) if rpm is not None else None,
            Bucket.full(tpm, now) if tpm is not None else None,
        )

    def admit(self, tokens: int, now: float | None = None) -> Admission:
        now = time.monotonic() if now is None else now
        wants: list[tuple[Measure, Bucket, float]] = []
        if self.requests is not None:
            wants.append(("requests", self.requests, 1.0))
        if self.tokens is not None:
            wants.append(("tokens", self.tokens, float(tokens)))
        for _, bucket, _ in wants:
            bucket.settle(now)
        for measure, bucket, amount in wants:
            if bucket.level < amount:
                # A request bigger than the whole allowance can never pass; still say when full.
                wait = wait_for(bucket.level, min(amount, bucket.limit), bucket.per_s)
                return Admission(False, _headers(wants), measure, bucket.limit, max(wait, 0.001))
        for _, bucket, amount in wants:
            bucket.level -= amount
        return Admission(True, _headers(wants))


def _headers(wants: list[tuple[Measure, Bucket, float]]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for measure, bucket, _ in wants:
        pairs.append((f"x-ratelimit-limit-{measure}", str(bucket.limit)))
        pairs.append((f"x-ratelimit-remaining-{measure}", str(max(0, int(bucket.level)))))
        pairs.append((f"x-ratelimit-reset-{measure}", format_reset(bucket.reset_s())))
    return tuple(pairs)


def anthropic_headers(
    pairs: tuple[tuple[str, str], ...], wall_now: float
) -> tuple[tuple[str, str], ...]:
    """The same numbers under Anthropic's names; resets as RFC 3339 instants."""
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        _, _, kind, measure = name.split("-", 3)
        if kind == "reset":
            instant = time.gmtime(wall_now + _parse_reset(value))
            out.append((f"anthropic-ratelimit-{measure}-{kind}", time.strftime(_RFC3339, instant)))
        else:
            out.append((f"anthropic-ratelimit-{measure}-{kind}", value))
    return tuple(out)


def _parse_reset(text: str) -> float:
    if text.endswith("ms"):
        return float(text[:-2]) / 1000.0
    minutes, _, seconds = text[:-1].rpartition("m")
    return (float(minutes) * 60.0 if minutes else 0.0) + float(seconds)
