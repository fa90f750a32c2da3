"""The escalation evaluation's arithmetic: accuracy and gap recovered for a set of decisions.

Use ``point`` for one operating point and ``sweep`` for the curve. Accuracy is the mean of
(strong if escalated else weak); gap recovered is (accuracy - weak) / (strong - weak), so 0 is
"never escalate", 1 is "as good as always asking the strong model" and more than 1 is possible
(escalating only the answers the weak model got wrong beats the strong model alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Point:
    """One operating point: the share escalated, the accuracy and the gap recovered."""

    escalation_rate: float
    accuracy: float
    gap_recovered: float


def point(weak: Sequence[int], strong: Sequence[int], escalated: Sequence[bool]) -> Point:
    """Figures for escalating exactly the rows marked in ``escalated``."""
    n = len(weak)
    if n == 0 or len(strong) != n or len(escalated) != n:
        raise ValueError("weak, strong and escalated must have the same non-zero length")
    weak_acc = sum(weak) / n
    strong_acc = sum(strong) / n
    acc = sum(s if e else w for w, s, e in zip(weak, strong, escalated, strict=True)) / n
    gap = strong_acc - weak_acc
    recovered = (acc - weak_acc) / gap if gap != 0 else math.nan
    return Point(sum(escalated) / n, acc, recovered)


def sweep(
    weak: Sequence[int],
    strong: Sequence[int],
    forced: Sequence[bool],
    scores: Sequence[float],
    thresholds: Sequence[float],
) -> list[tuple[float, Point]]:
    """For each threshold: escalate the ``forced`` rows plus every row scoring >= threshold."""
    return [
        (t, point(weak, strong, [f or s >= t for f, s in zip(forced, scores, strict=True)]))
        for t in thresholds
    ]


def share_thresholds(scores: Sequence[float], steps: int = 20) -> list[float]:
    """Thresholds that put 0, 1/steps, ..., all of ``scores`` at or above them."""
    ordered = sorted(scores, reverse=True)
    out = [math.inf]
    for i in range(1, steps + 1):
        k = round(i * len(ordered) / steps)
        out.append(ordered[k - 1] if k > 0 else math.inf)
    out[-1] = -math.inf  # "always": every row, whatever its score
    return out
