"""The estimate before a run: calls, tokens, cost and time, from the limits, the prompt sizes and
a small sample.

Policy:
- Prompt sizes come from every pending record (characters / 4 per record line, the fixed
  instruction once per call), scaled by the ratio the sample's real usage showed.
- The sample is the job's first call(s), sent with the same Idempotency-Key the run will use, so
  the run replays them instead of paying twice. It gives output tokens per record, the skip rate
  (extra calls) and the latency of a call.
- Time is the slowest of three bounds: tokens against TPM, calls against RPM, and calls x
  latency / concurrency. Under a rolling 60 s window a minute's allowance (at the pacer's share,
  0.97) can be sent as fast as the calls go (a "wave"); each later wave is sent as the one a
  minute before expires. So a rate-bound run takes (waves - 1) minutes plus the time one wave
  takes at the calls' own speed (concurrency / latency), plus one call for the tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.batch.calls import estimate_prompt_tokens
from gateway.batch.prompts import Item, build_prompt, instruction, max_output_tokens
from gateway.batch.spec import JobSpec

STEADY_SHARE = 0.97


@dataclass(frozen=True, slots=True)
class Sample:
    """What the sample calls measured."""

    records: int
    estimated_prompt_tokens: float
    prompt_tokens: int
    completion_tokens: int
    skipped: int
    latency_s: float
    calls: int


@dataclass(frozen=True, slots=True)
class Estimate:
    records: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    minutes: float
    bound: str  # tpm | rpm | latency
    tokens_per_record: float

    def lines(self) -> list[str]:
        return [
            f"records: {self.records:,}   calls: {self.calls:,}",
            f"tokens: {self.prompt_tokens + self.completion_tokens:,} "
            f"({self.prompt_tokens:,} in, {self.completion_tokens:,} out; "
            f"{self.tokens_per_record:.1f} per record)",
            f"cost: ${self.cost_usd:,.4f}",
            f"time: {self.minutes:,.1f} min (bound by {self.bound})",
        ]


def rate_bound_minutes(total: float, per_minute: float, per_second: float) -> float:
    """Minutes to send ``total`` under a rolling-window limit held at STEADY_SHARE when the
    calls alone could send ``per_second`` (see the module docstring)."""
    wave = STEADY_SHARE * per_minute
    wave_s = min(60.0, wave / per_second) if per_second > 0 else 60.0
    waves = total / wave
    if waves <= 1.0:
        return total / per_second / 60.0 if per_second > 0 else 0.0
    return waves - 1.0 + wave_s / 60.0


def estimate(
    spec: JobSpec, texts: Sequence[str], sample: Sample | None, aliases: int | None = None
) -> Estimate:
    """The estimate for the pending records ``texts`` (see the module docstring)."""
    n = len(texts)
    per_call = spec.records_per_call
    copies = aliases if aliases is not None else len(spec.aliases())
    skip_rate = sample.skipped / sample.records if sample and sample.records else 0.0
    base_calls = math.ceil(n / per_call) if n else 0
    # Skipped records come back in later calls: a geometric series of retries.
    calls = math.ceil(base_calls / max(0.05, 1.0 - skip_rate)) * copies
    fixed = estimate_prompt_tokens(instruction(spec) + "\n")
    lines = sum(len(f"[id=x] {t}\n") / 4.0 + 1.0 for t in texts)
    prompt_est = (fixed * calls / copies + lines / max(0.05, 1.0 - skip_rate)) * copies
    scale = (
        sample.prompt_tokens / sample.estimated_prompt_tokens
        if sample and sample.estimated_prompt_tokens
        else 1.0
    )
    prompt_tokens = int(prompt_est * scale)
    out_per_record = (
        sample.completion_tokens / sample.records
        if sample and sample.records
        else float(spec.output_tokens_per_record)
    )
    completion_tokens = int(out_per_record * n * copies / max(0.05, 1.0 - skip_rate))
    total = prompt_tokens + completion_tokens
    latency = sample.latency_s if sample else 1.0
    calls_per_s = spec.workers / latency
    bounds = {"latency": calls / calls_per_s / 60.0 + latency / 60.0}
    if spec.limits.tpm and calls:
        tokens_per_s = calls_per_s * total / calls
        bounds["tpm"] = rate_bound_minutes(total, spec.limits.tpm, tokens_per_s) + latency / 60
    if spec.limits.rpm:
        bounds["rpm"] = rate_bound_minutes(calls, spec.limits.rpm, calls_per_s) + latency / 60
    bound = max(bounds, key=lambda k: bounds[k])
    return Estimate(
        records=n,
        calls=calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=spec.price.usd(prompt_tokens, completion_tokens),
        minutes=bounds[bound],
        bound=bound,
        tokens_per_record=total / (n * copies) if n else 0.0,
    )


def sample_prompt(spec: JobSpec, items: Sequence[Item]) -> tuple[str, int, float]:
    """(prompt, output cap, estimated prompt tokens) of one sample call."""
    prompt = build_prompt(spec, items)
    return prompt, max_output_tokens(spec, len(items)), estimate_prompt_tokens(prompt)
