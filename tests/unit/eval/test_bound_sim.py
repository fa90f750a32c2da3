"""`tiergate eval cache-bound`: the replay of labelled scores through the online false-hit bound
(synthetic scores, no model), and the command end to end with the real models."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import orjson
import pytest

from gateway.eval.bound_sim import Score, replay, run_bound_sim


def good_above(n: int = 3000, seed: int = 1) -> list[Score]:
    """Everything above 0.9 right, 98% right from 0.6 to 0.9, a coin below; a fifth of the
    requests find no candidate."""
    rng = random.Random(seed)
    out: list[Score] = []
    for _ in range(n):
        if rng.random() < 0.2:
            out.append((None, False, rng.random() < 0.3))
            continue
        p = rng.uniform(0.3, 1.0)
        right = p >= 0.9 or rng.random() < (0.98 if p >= 0.6 else 0.5)
        out.append((p, right, right))
    return out


def wrong_above(n: int = 3000, seed: int = 2) -> list[Score]:
    """A fifth wrong from the calibrated 0.9 up to 0.97, nearly all right above."""
    rng = random.Random(seed)
    out: list[Score] = []
    for _ in range(n):
        p = rng.uniform(0.5, 1.0)
        right = rng.random() < (0.995 if p >= 0.97 else 0.8 if p >= 0.9 else 0.7)
        out.append((p, right, right))
    return out


def test_good_scores_below_the_cut_lower_it_and_serve_more_within_the_bound() -> None:
    r = replay(good_above(), bound=0.05, calibrated=0.9, sample=1.0, seed=7)
    assert r.learned.cut < 0.9 and r.static.cut == 0.9
    assert r.learned.should_hit_served > r.static.should_hit_served + 0.2
    assert r.learned.false_hit_rate <= 0.05
    assert r.static.false_hit_rate == 0.0 and r.static.samples == 0
    assert sum(w.samples for w in r.windows) == r.learned.samples > 0
    assert len(r.windows) == 10 and sum(w.items for w in r.windows) == 3000


def test_false_hits_above_the_cut_raise_it() -> None:
    r = replay(wrong_above(), bound=0.02, calibrated=0.9, sample=1.0, seed=7)
    assert r.learned.cut > 0.9
    assert r.windows[-1].false_hit_rate < r.static_windows[-1].false_hit_rate
    # far fewer wrong answers in all; the rate among the few served is the learning phase's
    assert r.learned.wrong < r.static.wrong / 4


def test_without_samples_the_learned_cut_is_the_static_one() -> None:
    r = replay(good_above(), bound=0.05, calibrated=0.9, sample=0.0, seed=7)
    assert r.learned == r.static and r.windows == r.static_windows
    assert r.learned.samples == 0


def test_comparison_noise_over_the_bound_stops_the_lowering_and_raises_the_cut() -> None:
    clean = replay(good_above(), bound=0.05, calibrated=0.9, sample=1.0, seed=7)
    noisy = replay(good_above(), bound=0.05, calibrated=0.9, sample=1.0, seed=7, noise=0.1)
    assert clean.learned.cut < 0.9 < noisy.learned.cut  # a 10% noise floor over a 5% bound
    assert noisy.learned.should_hit_served < clean.static.should_hit_served
    assert noisy.noise == 0.1 and clean.noise == 0.0


def test_a_seed_gives_the_same_replay() -> None:
    scores = wrong_above(1000)
    first = replay(scores, 0.02, 0.9, 0.5, seed=3)
    assert replay(scores, 0.02, 0.9, 0.5, seed=3) == first
    assert replay(scores, 0.02, 0.9, 0.5, seed=4).windows != first.windows


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="bound"):
        replay([], 0.0, 0.9, 1.0, 1)
    with pytest.raises(ValueError, match="sample"):
        replay([], 0.01, 0.9, 1.5, 1)
    with pytest.raises(ValueError, match="noise"):
        replay([], 0.01, 0.9, 1.0, 1, noise=1.0)


PAIRS = [
    ("How do I reset my password?", "How can I reset my password?", True, "paraphrase"),
    ("How do I cancel my order?", "How can I cancel my order?", True, "paraphrase"),
    ("Why is the sky blue?", "What makes the sky look blue?", True, "paraphrase"),
    ("How do I cancel my order?", "How do I not cancel my order?", False, "negation"),
    ("What is the capital of France?", "What is the capital of Spain?", False, "entity"),
    ("Convert 5 miles to km", "Convert 50 miles to km", False, "number"),
    ("How do I learn Python?", "What is the best way to learn Python?", True, "paraphrase"),
    ("How do I learn Python?", "How do I learn Java?", False, "entity"),
]


def test_the_command_scores_pairs_with_the_real_cache_and_ends_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cache.embedder import load_embedder

    path = tmp_path / "pairs.jsonl"
    rows = [{"a": a, "b": b, "same": same, "category": c} for a, b, same, c in PAIRS]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    from gateway.eval.cache_eval import run_cache_eval

    embedder = load_embedder(backend="torch")
    try:
        code = run_bound_sim(str(path), None, 0.05, 1.0, 13, None, embedder=embedder)
        lines = capsys.readouterr().out.strip().splitlines()
        assert run_cache_eval(str(path), None, None, False, None, embedder=embedder) == 0
        evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    finally:
        asyncio.run(embedder.aclose())
    assert code == 0
    summary = json.loads(lines[-1])
    for name in ("should_hit_served", "wrong_hit_rate", "precision"):  # the same cache decisions
        assert summary["static"][name] == pytest.approx(evaluated[name], abs=1e-4)
    assert summary["learned"] | {"last_window_false_hit_rate": 0} == summary["static"] | {
        "last_window_false_hit_rate": 0
    }  # 8 samples cannot move a 5% bound
    assert summary["pairs"] == len(PAIRS) and summary["bound"] == 0.05
    assert set(summary["learned"]) == {
        "precision",
        "false_hit_rate",
        "should_hit_served",
        "wrong_hit_rate",
        "last_window_false_hit_rate",
    }
    assert set(summary["static"]) == {
        "precision",
        "false_hit_rate",
        "should_hit_served",
        "wrong_hit_rate",
    }
    assert 0.0 <= summary["final_cut"] <= 1.0
    assert any(line.startswith("learned") for line in lines)


def test_unreadable_pairs_give_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bound_sim(str(tmp_path / "none.jsonl"), None, 0.01, 1.0, 13, None) == 2
    assert "cannot read pairs" in capsys.readouterr().err
    assert run_bound_sim("traps", "val", 0.01, 1.0, 13, None) == 2


def test_the_command_refuses_a_bound_outside_0_1() -> None:
    import typer
    from typer.testing import CliRunner

    from gateway.__main__ import _add_subcommands, app

    _add_subcommands()
    cli: typer.Typer = app
    for bound in ("0", "1.5"):
        result = CliRunner().invoke(cli, ["eval", "cache-bound", "--pairs", "x", "--bound", bound])
        assert result.exit_code == 2 and "(0, 1)" in words(result.output)
    result = CliRunner().invoke(cli, ["eval", "cache-bound", "--pairs", "x", "--sample", "0"])
    assert result.exit_code == 2 and "(0, 1]" in words(result.output)


def words(output: str) -> str:
    """The error text without the box typer draws around it (it wraps long lines)."""
    return " ".join(output.replace("│", " ").split())
