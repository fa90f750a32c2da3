"""RouteLLM's router-evaluation protocol as pure functions (numpy only).

When to use: ``tiergate eval router``, the training command's cross-validation and the tests
call these; they take per-prompt router scores and the weak and strong model's outcomes (0/1
correctness, or float judge scores for MT-bench) and never see a prompt.

Protocol (RouteLLM ``routellm/evals/benchmarks.py`` + ``evaluate.py``, commit 0b64fdaf):
- thresholds are the edges of 10 equal-count bins of the score (``pandas.qcut(score, 10)``:
  the 0, 0.1, ..., 1.0 quantiles, linear interpolation, duplicates kept);
- for every edge but the last, prompts with ``score >= edge`` go to the strong model; for the
  last edge (the maximum) ``score > edge``, so the curve runs from 100% to 0% strong calls;
- performance = mean outcome of the routed model; APGR = (AUC(router) - AUC(weak)) /
  (AUC(strong) - AUC(weak)), trapezoids over the strong-call fraction, where AUC(weak) and
  AUC(strong) are the constant lines integrated over the same x points;
- CPT(p) = the strong-call share at which performance reaches weak + p * (strong - weak), by
  ``numpy.interp`` of share against performance over the points sorted by share (RouteLLM's
  way: it assumes performance rises with the share, as it does for any useful router).

``fine=True`` uses 100 bins instead of 10: a smoother curve (and a slightly different APGR),
reported beside the protocol's figure, never instead of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
PROTOCOL_BINS = 10


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One routing threshold: its strong-call share (0..1), performance and PGR."""

    threshold: float
    strong_share: float
    performance: float
    pgr: float


@dataclass(frozen=True, slots=True)
class RouterFigures:
    """The protocol's summary for one router on one data set."""

    prompts: int
    weak: float  # mean outcome if every call goes to the weak model
    strong: float
    apgr: float
    cpt50: float  # strong-call share (0..1) reaching 50% of the gap
    cpt80: float
    curve: tuple[CurvePoint, ...]

    def summary(self) -> dict[str, float | int]:
        """The last line of ``tiergate eval router`` (shares as fractions, 4 decimals)."""
        return {
            "prompts": self.prompts,
            "apgr": round(self.apgr, 4),
            "cpt50": round(self.cpt50, 4),
            "cpt80": round(self.cpt80, 4),
        }


def bin_edges(scores: Sequence[float] | Floats, bins: int = PROTOCOL_BINS) -> Floats:
    """The ``bins + 1`` equal-count bin edges of ``scores`` (``pandas.qcut``'s retbins)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no scores")
    edges: Floats = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    return edges


def routing_curve(
    scores: Sequence[float] | Floats,
    weak: Sequence[float] | Floats,
    strong: Sequence[float] | Floats,
    bins: int = PROTOCOL_BINS,
) -> list[CurvePoint]:
    """Performance at each threshold, in threshold order (strong share falling to 0)."""
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64)
    if not s.shape == w.shape == g.shape:
        raise ValueError("scores, weak and strong must have one value per prompt")
    weak_mean, strong_mean = float(w.mean()), float(g.mean())
    edges = bin_edges(s, bins)
    points = []
    for i, edge in enumerate(edges):
        chosen = s >= edge if i != len(edges) - 1 else s > edge
        perf = float(np.where(chosen, g, w).mean())
        points.append(
            CurvePoint(float(edge), float(chosen.mean()), perf, _pgr(perf, weak_mean, strong_mean))
        )
    return points


def _pgr(performance: float, weak: float, strong: float) -> float:
    gap = strong - weak
    return (performance - weak) / gap if gap else 0.0


def apgr(points: Sequence[CurvePoint], weak: float, strong: float) -> float:
    """Area under performance over strong share, normalised between the weak and strong lines."""
    ordered = sorted(points, key=lambda p: p.strong_share)
    x = np.array([p.strong_share for p in ordered])
    y = np.array([p.performance for p in ordered])
    width = float(x[-1] - x[0])
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)
    gap_area = (strong - weak) * width
    return (area - weak * width) / gap_area if gap_area else 0.0


def cpt(points: Sequence[CurvePoint], weak: float, strong: float, fraction: float) -> float:
    """Strong-call share (0..1) at which performance reaches ``weak + fraction * gap``."""
    ordered = sorted(points, key=lambda p: p.strong_share)
    target = weak + fraction * (strong - weak)
    perf = np.array([p.performance for p in ordered])
    share = np.array([p.strong_share for p in ordered])
    return float(np.interp(target, perf, share))


def evaluate_router(
    scores: Sequence[float] | Floats,
    weak: Sequence[float] | Floats,
    strong: Sequence[float] | Floats,
    bins: int = PROTOCOL_BINS,
) -> RouterFigures:
    """The whole protocol: curve, APGR, CPT(50%), CPT(80%)."""
    points = routing_curve(scores, weak, strong, bins)
    weak_mean = float(np.mean(np.asarray(weak, dtype=np.float64)))
    strong_mean = float(np.mean(np.asarray(strong, dtype=np.float64)))
    return RouterFigures(
        prompts=int(np.asarray(scores).size),
        weak=weak_mean,
        strong=strong_mean,
        apgr=apgr(points, weak_mean, strong_mean),
        cpt50=cpt(points, weak_mean, strong_mean, 0.5),
        cpt80=cpt(points, weak_mean, strong_mean, 0.8),
        curve=tuple(points),
    )
