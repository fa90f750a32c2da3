"""The per-alias false-hit bound learned from verified samples (cache.bound)."""

from __future__ import annotations

import random

import pytest

from cache.bound import CEILING, SPAN, WINDOW, HitBound, grid, wilson


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(5, 100)
    assert 0.02 < low < 0.05 < high < 0.12
    assert wilson(0, 20)[0] == 0.0
    assert wilson(0, 390)[1] < 0.01 < wilson(0, 375)[1]


def test_the_grid_runs_from_lowest_to_the_ceiling() -> None:
    cuts = grid(0.59)
    assert cuts[0] == 0.59 and cuts[-1] == CEILING
    assert 0.89 in cuts and cuts == sorted(cuts)


def test_it_starts_at_the_calibrated_cut_and_few_samples_move_nothing() -> None:
    bound = HitBound(bound=0.01, calibrated=0.89)
    assert bound.cut == 0.89 and bound.lowest == pytest.approx(0.89 - SPAN)
    for _ in range(300):  # 0 of 300 wrong: not yet sure the rate is under 1%
        assert bound.observe(0.95, agreed=True) == 0.89


def test_enough_agreeing_near_misses_lower_the_cut_only_as_far_as_they_reach() -> None:
    bound = HitBound(bound=0.05, calibrated=0.89)
    for i in range(400):
        bound.observe(0.75 + 0.2 * (i % 10) / 10, agreed=True)
    assert bound.cut == pytest.approx(0.75)  # nothing seen below 0.75 vouches for lower cuts
    assert not bound.wants(0.5) and bound.wants(0.6)


def test_disagreements_below_the_cut_keep_it_where_the_evidence_is_clean() -> None:
    bound = HitBound(bound=0.02, calibrated=0.89)
    for i in range(2000):
        p = 0.6 + 0.39 * (i % 100) / 100
        bound.observe(p, agreed=p >= 0.8 or i % 3 != 0)  # a third wrong under 0.8
    assert 0.78 <= bound.cut <= 0.85


def test_clean_samples_never_raise_the_cut() -> None:
    bound = HitBound(bound=0.01, calibrated=0.89)
    for i in range(600):  # all agree; most near the top, a few around the cut
        bound.observe(0.99 if i % 10 else 0.895, agreed=True)
        assert bound.cut <= 0.89


def test_a_lowered_cut_goes_back_when_its_evidence_leaves_the_window() -> None:
    bound = HitBound(bound=0.05, calibrated=0.89)
    for _ in range(200):
        bound.observe(0.7, agreed=True)
    assert bound.cut == pytest.approx(0.7)
    for i in range(WINDOW):  # later traffic: only high scores, a few wrong
        bound.observe(0.995, agreed=i % 50 != 0)
    assert bound.cut == pytest.approx(0.89)


def test_a_clear_violation_raises_the_cut() -> None:
    bound = HitBound(bound=0.01, calibrated=0.89)
    for i in range(60):
        bound.observe(0.9 + 0.001 * (i % 50), agreed=i % 4 != 0)  # a quarter wrong above 0.9
    assert bound.cut == CEILING  # no cut with 20 samples shows a rate within the bound
    steps = HitBound(bound=0.05, calibrated=0.89)
    for i in range(400):  # a third wrong under 0.95, none above: one move, straight there
        p = 0.89 + 0.1 * (i % 100) / 100
        steps.observe(p, agreed=p >= 0.95 or i % 3 != 0)
    assert steps.cut == pytest.approx(0.95)
    ceiling = HitBound(bound=0.01, calibrated=0.89)
    for _ in range(100):
        ceiling.observe(0.9995, agreed=False)
    assert ceiling.cut == CEILING


def test_samples_under_the_lowest_cut_are_not_kept_and_the_window_is_bounded() -> None:
    bound = HitBound(bound=0.01, calibrated=0.89)
    bound.observe(0.2, agreed=False)
    assert len(bound.samples) == 0
    for _ in range(WINDOW + 10):
        bound.observe(0.99, agreed=True)
    assert len(bound.samples) == WINDOW


def test_the_counts_follow_the_window_as_it_slides() -> None:
    rng = random.Random(5)
    bound = HitBound(bound=0.05, calibrated=0.89)
    for _ in range(WINDOW + 1500):
        bound.observe(rng.uniform(0.6, 1.0), agreed=rng.random() < 0.97)
    kept = list(bound.samples)
    assert sum(bound._seen) == len(kept) == WINDOW
    assert sum(bound._failed) == sum(not agreed for _, agreed in kept)
    at_cut = [agreed for p, agreed in kept if p >= bound.cut]
    assert wilson(at_cut.count(False), len(at_cut))[1] < 0.05  # the cut chosen holds the bound
