"""RouteLLM's protocol on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.routing.evaluate import (
    CurvePoint,
    apgr,
    bin_edges,
    cpt,
    evaluate_router,
    routing_curve,
)

SCORES = [0.1, 0.2, 0.3, 0.4]
WEAK = [1, 0, 1, 0]
STRONG = [1, 1, 1, 1]


def test_bin_edges_are_qcut_quantiles_with_linear_interpolation() -> None:
    edges = bin_edges(SCORES)
    expected = [0.1, 0.13, 0.16, 0.19, 0.22, 0.25, 0.28, 0.31, 0.34, 0.37, 0.4]
    assert edges == pytest.approx(expected)


def test_curve_runs_from_all_strong_to_none_with_the_last_edge_strict() -> None:
    points = routing_curve(SCORES, WEAK, STRONG)
    shares = [p.strong_share for p in points]
    perfs = [p.performance for p in points]
    assert shares == [1.0, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.0]
    assert perfs == [1.0, 1.0, 1.0, 1.0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.5]
    assert points[-1].pgr == 0.0
    assert points[0].pgr == 1.0


def test_apgr_and_cpt_on_the_hand_computed_curve() -> None:
    # Trapezoids: 0.15625 + 0.1875 + 0.21875 + 0.25 = 0.8125; weak area 0.5, strong area 1.0.
    figures = evaluate_router(SCORES, WEAK, STRONG)
    assert figures.prompts == 4
    assert figures.weak == 0.5
    assert figures.strong == 1.0
    assert figures.apgr == pytest.approx(0.625)
    # 80% of the gap = 0.9: between (0.5 share, 0.75) and (0.75 share, 1.0).
    assert figures.cpt80 == pytest.approx(0.65)
    assert figures.summary() == {"prompts": 4, "apgr": 0.625, "cpt50": figures.cpt50, "cpt80": 0.65}


def test_cpt_interpolates_linearly_and_apgr_normalises() -> None:
    points = [CurvePoint(0, 0.0, 0.5, 0), CurvePoint(0, 0.5, 0.7, 0), CurvePoint(0, 1.0, 0.9, 0)]
    assert cpt(points, 0.5, 0.9, 0.5) == pytest.approx(0.5)
    assert cpt(points, 0.5, 0.9, 0.8) == pytest.approx(0.8)
    # Area 0.3 + 0.4 = 0.7; weak 0.5, gap 0.4 over a width of 1.
    assert apgr(points, 0.5, 0.9) == pytest.approx(0.5)


def test_float_outcomes_work_like_judge_scores() -> None:
    figures = evaluate_router([3.0, 1.0], [8.0, 5.0], [9.0, 9.0])
    # Weak 6.5, strong 9.0. Edges from 1 to 3; the first edge sends both (9.0), the last none.
    assert figures.curve[0].performance == 9.0
    assert figures.curve[-1].performance == 6.5
    assert 0.0 < figures.apgr < 1.0


def test_a_perfect_router_beats_a_random_one() -> None:
    rng = np.random.default_rng(0)
    weak = rng.integers(0, 2, 2000)
    strong = np.maximum(weak, rng.integers(0, 2, 2000))
    perfect = evaluate_router(strong - weak + 0.001 * rng.random(2000), weak, strong)
    random = evaluate_router(rng.random(2000), weak, strong)
    assert perfect.apgr > 0.85
    assert 0.4 < random.apgr < 0.6
    assert perfect.cpt50 < random.cpt50


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per prompt"):
        routing_curve([0.1, 0.2], [1], [1, 0])
