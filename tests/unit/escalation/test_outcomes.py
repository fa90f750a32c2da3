from __future__ import annotations

import math

import pytest

from gateway.escalation.outcomes import point, share_thresholds, sweep

WEAK = [1, 0, 0, 0]
STRONG = [1, 1, 1, 0]


def test_never_and_always_escalating_give_zero_and_one() -> None:
    never = point(WEAK, STRONG, [False] * 4)
    always = point(WEAK, STRONG, [True] * 4)
    assert (never.escalation_rate, never.accuracy, never.gap_recovered) == (0.0, 0.25, 0.0)
    assert (always.escalation_rate, always.accuracy, always.gap_recovered) == (1.0, 0.75, 1.0)


def test_no_gap_has_no_share_recovered() -> None:
    assert math.isnan(point([1, 0], [0, 1], [True, False]).gap_recovered)


def test_gap_recovered_is_relative_to_weak_and_strong() -> None:
    weak = [1, 0, 0, 0]
    strong = [1, 1, 1, 0]  # weak 25%, strong 75%
    pt = point(weak, strong, [False, True, False, False])
    assert pt.accuracy == 0.5
    assert pt.escalation_rate == 0.25
    assert pt.gap_recovered == pytest.approx(0.5)
    oracle = point(weak, strong, [False, True, True, False])
    assert oracle.gap_recovered == pytest.approx(1.0)
    beats = point([1, 0, 0, 1], [0, 1, 1, 0], [False, True, True, False])
    assert beats.accuracy == 1.0  # better than either model alone


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="same non-zero length"):
        point([1], [1, 0], [True])
    with pytest.raises(ValueError, match="same non-zero length"):
        point([], [], [])


def test_sweep_forces_rule_failures_then_adds_by_score() -> None:
    weak = [0, 0, 1, 1]
    strong = [1, 1, 1, 1]
    forced = [True, False, False, False]
    scores = [0.0, 0.9, 0.5, 0.1]
    curve = sweep(weak, strong, forced, scores, [math.inf, 0.9, 0.5, -math.inf])
    assert [p.escalation_rate for _, p in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [p.gap_recovered for _, p in curve] == [0.5, 1.0, 1.0, 1.0]


def test_share_thresholds_split_scores_into_equal_shares() -> None:
    scores = [0.1, 0.2, 0.3, 0.4]
    thresholds = share_thresholds(scores, steps=4)
    assert thresholds == [math.inf, 0.4, 0.3, 0.2, -math.inf]
    counts = [sum(s >= t for s in scores) for t in thresholds]
    assert counts == [0, 1, 2, 3, 4]
