"""Pure parts of the sim: config loading, overrides, timing, limits, answers, schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.sim import (
    FaultKind,
    FaultRule,
    ModelBehaviour,
    SimConfig,
    SimConfigError,
    load_sim_config,
)
from gateway.sim.answers import Ask, ToolSpec, answer, build_voice, read_prompt, sample_for_schema
from gateway.sim.config import RuntimeFaultRule
from gateway.sim.faults import FaultBook, first_firing, plan_timing, read_overrides
from gateway.sim.limits import ModelLimiter, format_reset

REPO = Path(__file__).resolve().parents[3]


def test_default_config_file_is_valid() -> None:
    config = load_sim_config(str(REPO / "routing_rules" / "sim.yaml"))
    assert {"sim-fast", "sim-smart", "sim-claude", "default"} <= set(config.models)
    assert config.behaviour_key("no-such-model") == "default"


def test_builtin_defaults() -> None:
    config = load_sim_config(None)
    assert config.embedding_dimensions == 384
    assert set(config.models) == {"default"}
    assert SimConfig(models={"x": ModelBehaviour()}).models.keys() == {"x", "default"}


def test_config_errors_name_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "sim.yaml"
    bad.write_text("models:\n  sim-fast:\n    latency_ms: 5\n    colour: red\n")
    with pytest.raises(SimConfigError, match=r"models\.sim-fast\.colour"):
        load_sim_config(str(bad))
    bad.write_text("models:\n  m:\n    reply: hi\n    echo: true\n")
    with pytest.raises(SimConfigError, match="exclusive"):
        load_sim_config(str(bad))
    bad.write_text("models:\n  m:\n    faults: [{fault: 429, rate: 0.5}]\n")
    rule = load_sim_config(str(bad)).models["m"].faults[0]
    assert rule.fault is FaultKind.RATE_LIMIT and rule.rate == 0.5


def test_config_is_frozen() -> None:
    config = SimConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 3  # type: ignore[misc]


def test_overrides_from_headers() -> None:
    overrides = read_overrides(
        {
            b"x-sim-latency-ms": b"25",
            b"x-sim-completion-tokens": b"7",
            b"x-sim-fault": b"SLOW-FIRST-TOKEN",
            b"x-sim-ttft-ms": b"300",
        }
    )
    assert overrides.latency_ms == 25 and overrides.completion_tokens == 7
    assert overrides.fault is not None
    assert overrides.fault.fault is FaultKind.SLOW_FIRST_TOKEN and overrides.fault.ttft_ms == 300
    with pytest.raises(ValueError, match="x-sim-latency-ms"):
        read_overrides({b"x-sim-latency-ms": b"soon"})
    with pytest.raises(ValueError, match="x-sim-fault"):
        read_overrides({b"x-sim-fault": b"teapot"})


def test_timing_policy() -> None:
    behaviour = ModelBehaviour(latency_ms=100, ttft_ms=20, tokens_per_s=50)
    base = plan_timing(behaviour, read_overrides({}), None, 0.0)
    assert (base.latency_s, base.ttft_s, base.gap_s) == (0.1, 0.02, 0.02)
    slow = FaultRule(fault=FaultKind.SLOW_FIRST_TOKEN, ttft_ms=900)
    timing = plan_timing(behaviour, read_overrides({b"x-sim-tokens-per-s": b"0"}), slow, 0.0)
    assert (timing.latency_s, timing.ttft_s, timing.gap_s) == (1.0, 0.9, 0.0)


def test_first_firing_follows_rates() -> None:
    never = FaultRule(fault=FaultKind.SERVER_ERROR, rate=0.0)
    half = FaultRule(fault=FaultKind.BAD_GATEWAY, rate=0.5)
    assert first_firing([never, half], lambda: 0.4) is half
    assert first_firing([never, half], lambda: 0.6) is None


def test_fault_book_counts_and_patterns() -> None:
    book = FaultBook()
    book.add(RuntimeFaultRule(fault=FaultKind.HANG, model="sim-*", count=1))
    book.add(RuntimeFaultRule(fault=FaultKind.QUOTA, model="other"))
    assert book.draw("gpt", lambda: 0.0) is None
    first = book.draw("sim-fast", lambda: 0.0)
    assert first is not None and first.fault is FaultKind.HANG
    assert book.draw("sim-fast", lambda: 0.0) is None
    assert [rule["model"] for rule in book.listing()] == ["other"]
    assert book.clear(model="other") == 1


def test_limiter_refills_over_the_minute() -> None:
    limiter = ModelLimiter.create(rpm=None, tpm=600, now=0.0)
    assert limiter is not None
    assert limiter.admit(500, now=0.0).admitted
    refused = limiter.admit(200, now=0.0)
    assert not refused.admitted and refused.refused_by == "tokens"
    assert refused.retry_after_s == pytest.approx(10.0)  # 100 missing at 10 tokens/s
    assert limiter.admit(200, now=10.0).admitted
    assert dict(refused.headers)["x-ratelimit-remaining-tokens"] == "100"


def test_reset_notation() -> None:
    assert format_reset(0.02) == "20ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(360.0) == "6m0s"


def test_answers_are_pure_and_capped() -> None:
    voice = build_voice("m", ModelBehaviour(completion_tokens=9), seed=0)
    prompt = read_prompt([("user", "hello")], None)
    one = answer(voice, prompt, Ask(), 0, "")
    assert one == answer(
        build_voice("m", ModelBehaviour(completion_tokens=9), 0), prompt, Ask(), 0, ""
    )
    assert len(one.pieces) == 9 and one.finish == "stop"
    assert not one.text.startswith(" ")
    capped = answer(voice, prompt, Ask(cap=4), 0, "")
    assert capped.pieces == one.pieces[:4] and capped.finish == "length"
    long = answer(voice, prompt, Ask(want_tokens=5000), 0, "")
    assert long.tokens == 5000
    tool = answer(voice, prompt, Ask(tool=ToolSpec("f", None)), 0, "call_1")
    assert tool.tool_call is not None and tool.tool_call.arguments == "{}"
    assert tool.finish == "tool_calls"


def test_schema_samples() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "x"},
            "n": {"type": "integer", "minimum": 3},
            "ok": {"type": ["boolean", "null"]},
            "inner": {"anyOf": [{"type": "object", "properties": {"s": {"type": "string"}}}]},
        },
    }
    assert sample_for_schema(schema, "t") == {"kind": "x", "n": 3, "ok": True, "inner": {"s": "t"}}
    assert sample_for_schema({}, "t") == {"answer": "t"}
    assert sample_for_schema({"type": "string"}, "t", empty=True) == {}
