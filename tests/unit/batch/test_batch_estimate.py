"""The estimate: calls, tokens, cost and time from limits, prompt sizes and a sample."""

from __future__ import annotations

import pytest

from gateway.batch.estimate import STEADY_SHARE, Sample, estimate, rate_bound_minutes
from gateway.batch.spec import JobSpec


def spec(**fields: object) -> JobSpec:
    base: dict[str, object] = {"input": "x.jsonl", "labels": ["a", "b"], "records_per_call": 20}
    return JobSpec.model_validate(base | fields)


TEXTS = ["x" * 80] * 1000  # 1,000 records of 80 characters


def test_calls_and_tokens_without_a_sample() -> None:
    est = estimate(spec(), TEXTS, None)
    assert est.calls == 50
    assert est.records == 1000
    per_record = est.tokens_per_record
    assert 20 < per_record < 40  # ~22 for the line, the instruction / 20, 8 out
    assert est.bound == "latency"


def test_a_sample_scales_prompt_tokens_and_sets_output_and_retries() -> None:
    sample = Sample(
        records=20, estimated_prompt_tokens=1000, prompt_tokens=1200, completion_tokens=40,
        skipped=2, latency_s=0.5, calls=1,
    )  # fmt: skip
    plain = estimate(spec(), TEXTS, None)
    est = estimate(spec(), TEXTS, sample)
    assert est.calls == 56  # 50 / (1 - 0.1), rounded up
    assert est.completion_tokens == pytest.approx(2 * 1000 / 0.9, rel=0.01)
    assert est.prompt_tokens > plain.prompt_tokens * 1.2 * 1.05


def test_time_is_bound_by_tpm_when_the_limit_is_tight() -> None:
    est = estimate(spec(limits={"tpm": 10_000}), TEXTS, None)
    assert est.bound == "tpm"
    total = est.prompt_tokens + est.completion_tokens
    waves = total / (STEADY_SHARE * 10_000)
    # 4 calls/s (workers / 1 s latency without a sample) send a wave of 9,700 tokens in < 60 s.
    wave_s = STEADY_SHARE * 10_000 / (4 * total / est.calls)
    assert est.minutes == pytest.approx(waves - 1 + wave_s / 60 + 1 / 60, rel=1e-6)


def test_the_first_minute_is_one_wave_under_a_rolling_window() -> None:
    # Less than one minute's allowance: only the calls' own speed counts.
    assert rate_bound_minutes(50_000, 100_000, 10_000) == pytest.approx(5 / 60)
    # Three waves, each sent in 9.7 s: two minutes of waiting plus one wave.
    three = STEADY_SHARE * 300_000
    assert rate_bound_minutes(three, 100_000, 10_000) == pytest.approx(2 + 9.7 / 60)


def test_cost_uses_the_price() -> None:
    priced = spec(price={"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0})
    est = estimate(priced, TEXTS, None)
    assert est.cost_usd == pytest.approx((est.prompt_tokens + 2 * est.completion_tokens) / 1e6)


def test_two_models_double_the_work() -> None:
    one = estimate(spec(), TEXTS, None)
    two = estimate(spec(second_alias="smart"), TEXTS, None)
    assert two.calls == 2 * one.calls
