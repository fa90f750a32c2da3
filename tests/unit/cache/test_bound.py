"""The per-alias false-hit bound held from verified samples (cache.bound)."""

from __future__ import annotations

import pytest

from cache.bound import CEILING, MIN_SAMPLES, RELAX_SAMPLES, STEP, HitBound, wilson


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(5, 100)
    assert 0.02 < low < 0.05 < high < 0.12
    assert wilson(0, 20)[0] == 0.0


def test_no_evidence_of_a_violation_keeps_the_cut() -> None:
    bound = HitBound(bound=0.01, floor_cut=0.9, cut=0.9)
    for _ in range(MIN_SAMPLES * 3):
        assert bound.observe(agreed=True) == 0.9


def test_a_clear_violation_raises_the_cut_and_starts_counting_again() -> None:
    bound = HitBound(bound=0.01, floor_cut=0.9, cut=0.9)
    cuts = [bound.observe(agreed=i % 4 != 0) for i in range(MIN_SAMPLES)]
    assert cuts[-1] == pytest.approx(0.9 + STEP)
    assert bound.samples == 0


def test_the_cut_never_passes_the_ceiling_nor_relaxes_below_the_calibrated_one() -> None:
    bound = HitBound(bound=0.01, floor_cut=0.9, cut=CEILING)
    for _ in range(MIN_SAMPLES):
        bound.observe(agreed=False)
    assert bound.cut == CEILING
    relaxed = HitBound(bound=0.05, floor_cut=0.9, cut=0.92)
    for _ in range(RELAX_SAMPLES * 3):
        relaxed.observe(agreed=True)
    assert relaxed.cut == 0.9
