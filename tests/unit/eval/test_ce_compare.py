"""The curve figures `tiergate eval cache-models` ranks cross-encoders by."""

from __future__ import annotations

import math

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
