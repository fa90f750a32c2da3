"""The curve figures `tiergate eval cache-models` ranks cross-encoders by."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gateway.eval.ce_compare import at_cut, best_f1, precision_at_recall, roc_auc

Y = np.array([True, True, False, True, False, False, True, False])


def test_auc_is_one_for_a_perfect_order_and_zero_for_its_reverse() -> None:
    scores = np.where(Y, 0.9, 0.1) + np.arange(len(Y)) * 0.001
    assert roc_auc(scores, Y) == 1.0
    assert roc_auc(-scores, Y) == 0.0


def test_auc_counts_ties_as_half_and_matches_the_pairwise_definition() -> None:
    assert roc_auc(np.full(len(Y), 0.5), Y) == 0.5
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, len(Y)).astype(float)
    pos, neg = scores[Y], scores[~Y]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(scores, Y) == pytest.approx(pairwise)
    assert math.isnan(roc_auc(scores, np.ones(len(Y), bool)))


def test_precision_at_recall_takes_the_fewest_top_pairs_that_reach_it() -> None:
    # ranked: T F T F T T F F -> 40% of 4 duplicates is 1.6, reached at the 3rd pair (2 of 3)
    y = np.array([True, False, True, False, True, True, False, False])
    scores = np.linspace(1.0, 0.1, len(y))
    assert precision_at_recall(scores, y, 0.40) == pytest.approx(2 / 3)
    assert precision_at_recall(scores, y, 0.25) == 1.0
    assert precision_at_recall(scores, y, 1.0) == pytest.approx(4 / 6)


def test_best_f1_and_the_figures_at_a_cut() -> None:
    y = np.array([True, False, True, False, True, True, False, False])
    scores = np.linspace(1.0, 0.1, len(y))
    # every cut: the best is the top 6 (4 of 4 found, 6 served): 2*4 / (6+4)
    assert best_f1(scores, y) == pytest.approx(0.8)
    precision, recall = at_cut(scores, y, scores[2])
    assert precision == pytest.approx(2 / 3) and recall == 0.5
    assert at_cut(scores, y, 2.0) == (0.0, 0.0)


def test_model_figures_score_the_shipped_model_with_its_card() -> None:
    from cache.cross_encoder import load_cross_encoder
    from gateway.eval.ce_compare import model_figures

    ce = load_cross_encoder()
    assert ce is not None
    quora = [
        ("How do I learn Python?", "What is the best way to learn Python?", True, "quora"),
        ("How do I learn Python?", "How do I learn Java?", False, "quora"),
        ("Why is the sky blue?", "What makes the sky look blue?", True, "quora"),
        ("Why is the sky blue?", "Why is the sea salty?", False, "quora"),
    ]
    traps = [
        ("How do I cancel my order?", "How can I cancel my order?", True, "paraphrase"),
        ("How do I cancel my order?", "How do I not cancel my order?", False, "negation"),
    ]
    sure = (np.array([0.99, 0.99, 0.99, 0.99]), np.ones(4))  # the trees say yes to all
    under_floor = (np.array([0.99, 0.99]), np.array([0.9, 0.1]))  # the trap below the floor
    figures = model_figures(ce, quora, sure, traps, under_floor)
    assert set(figures) == {"alone", "decision"}
    assert figures["alone"]["auc"] == 1.0  # the model orders these four itself
    assert figures["decision"]["cut"] == ce.threshold
    assert figures["decision"]["worst_trap"] == ["negation", 0.0]


def test_the_command_refuses_a_missing_model(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from gateway.__main__ import _add_subcommands, app

    _add_subcommands()
    cli: typer.Typer = app
    result = CliRunner().invoke(
        cli, ["eval", "cache-models", "--model", str(tmp_path / "none.onnx")]
    )
    assert result.exit_code == 2 and "no such model" in words(result.output)
    result = CliRunner().invoke(cli, ["eval", "cache-models", "--split", "val"])
    assert result.exit_code == 2 and "train, dev or test" in words(result.output)


def words(output: str) -> str:
    """The error text without the box typer draws around it (it wraps long lines)."""
    return " ".join(output.replace("│", " ").split())
