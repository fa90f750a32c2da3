"""``tiergate eval cache-bound``: replay a labelled stream through the online false-hit bound.

When to use: before setting ``max_false_hit_rate`` (and ``verify_sample``) on an alias, to see
what the learned cut (cache.bound's ``HitBound``) would do to a stream of labelled pairs: how far
it moves from the calibrated cut, how many true paraphrases it serves, and whether the false-hit
rate among served hits stays under the bound. ``replay`` is pure (scores in, figures out);
``run_bound_sim`` scores each pair with the real cache exactly as ``tiergate eval cache --sweep``
does (gateway.eval.cache_eval) and prints the replay. Report it on ``dev``; ``test`` stays for
the figures nothing was tuned on.

Policy:
- The stream is the pairs in an order shuffled by ``seed``. An item is served when its score
  is at or above the cut held before the item is seen (the cut it would meet in production).
- An item whose score the bound wants is sampled with probability ``sample``, whether it was
  served (a hit re-asked upstream) or not (a near miss compared with the refused candidate):
  the bound then observes the score and whether serving the candidate would have been right.
- The same stream at the static calibrated cut, never learning, is the comparison.
- Figures per window (the stream in ``windows`` equal parts) and for the whole stream:
  precision and false-hit rate among served hits, should-hit served (true paraphrases answered
  with their own entry) and the wrong-hit rate (pairs that must not hit that were served).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, TextIO

from cache.bound import HitBound
from cache.embedder import Embedder
from gateway.eval.cache_eval import load_pairs, policy_from_rules, score_pairs

Score = tuple[float | None, bool, bool]  # (p or None, serving it is right, should hit)


@dataclass(frozen=True, slots=True)
class Step:
    """One item of the stream as the cache met it."""

    served: bool
    correct: bool
    should_hit: bool
    sampled: bool
    cut: float  # the cut after this item was observed


@dataclass(frozen=True, slots=True)
class Tally:
    """The figures of a stretch of the stream."""

    items: int
    served: int
    wrong: int  # served and not right
    same: int  # should hit
    same_served: int  # should hit and served right
    different: int  # must not hit
    different_served: int  # must not hit and served
    samples: int
    cut: float  # the cut at the end of the stretch

    @property
    def precision(self) -> float:
        return (self.served - self.wrong) / self.served if self.served else 1.0

    @property
    def false_hit_rate(self) -> float:
        return self.wrong / self.served if self.served else 0.0

    @property
    def should_hit_served(self) -> float:
        return self.same_served / self.same if self.same else 0.0

    @property
    def wrong_hit_rate(self) -> float:
        return self.different_served / self.different if self.different else 0.0


@dataclass(frozen=True, slots=True)
class Replay:
    """The stream with the learned cut and at the static calibrated one."""

    bound: float
    calibrated: float
    sample: float
    seed: int
    noise: float
    windows: tuple[Tally, ...]
    learned: Tally
    static_windows: tuple[Tally, ...]
    static: Tally


def tally(steps: Sequence[Step], cut: float) -> Tally:
    """The figures of ``steps``; ``cut`` is the one in force before them (kept when empty)."""
    return Tally(
        items=len(steps),
        served=sum(s.served for s in steps),
        wrong=sum(s.served and not s.correct for s in steps),
        same=sum(s.should_hit for s in steps),
        same_served=sum(s.served and s.correct and s.should_hit for s in steps),
        different=sum(not s.should_hit for s in steps),
        different_served=sum(s.served and not s.should_hit for s in steps),
        samples=sum(s.sampled for s in steps),
        cut=steps[-1].cut if steps else cut,
    )


def stream(
    order: Sequence[Score],
    tracker: HitBound,
    sample: float,
    rng: random.Random,
    noise: float = 0.0,
    noise_rng: random.Random | None = None,
) -> list[Step]:
    """Each item served at the cut held before it; sampled items move the cut. With ``noise``,
    that share of right candidates is judged a disagreement (answers that vary by nature)."""
    steps: list[Step] = []
    flip = noise_rng or random.Random(0)
    for p, correct, should_hit in order:
        served = p is not None and p >= tracker.cut
        sampled = False
        if p is not None and tracker.wants(p) and rng.random() < sample:
            agreed = correct and not (noise and flip.random() < noise)
            tracker.observe(p, agreed)
            sampled = True
        steps.append(Step(served, correct, should_hit, sampled, tracker.cut))
    return steps


def windowed(steps: Sequence[Step], windows: int, cut: float) -> tuple[Tally, ...]:
    """The figures of each of ``windows`` equal parts of ``steps``."""
    edges = [len(steps) * k // windows for k in range(windows + 1)]
    out: list[Tally] = []
    for lo, hi in pairwise(edges):
        out.append(tally(steps[lo:hi], out[-1].cut if out else cut))
    return tuple(out)


def replay(
    scores: Sequence[Score],
    bound: float,
    calibrated: float,
    sample: float,
    seed: int,
    windows: int = 10,
    noise: float = 0.0,
) -> Replay:
    """``scores`` in an order shuffled by ``seed``, through a ``HitBound`` starting at
    ``calibrated`` that observes a ``sample`` share of the items it wants (a ``noise`` share of
    right ones judged wrong), and at the static ``calibrated`` cut."""
    if not 0.0 < bound < 1.0:
        raise ValueError(f"bound must be in (0, 1), not {bound}")
    if not 0.0 <= sample <= 1.0:
        raise ValueError(f"sample must be in [0, 1], not {sample}")
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1), not {noise}")
    if windows < 1:
        raise ValueError(f"windows must be at least 1, not {windows}")
    rng = random.Random(seed)
    order = list(scores)
    rng.shuffle(order)
    noise_rng = random.Random(seed + 1)
    learned = stream(order, HitBound(bound, calibrated), sample, rng, noise, noise_rng)
    static = stream(order, HitBound(bound, calibrated), 0.0, random.Random(seed))
    return Replay(
        bound,
        calibrated,
        sample,
        seed,
        noise,
        windowed(learned, windows, calibrated),
        tally(learned, calibrated),
        windowed(static, windows, calibrated),
        tally(static, calibrated),
    )


def figures(t: Tally) -> dict[str, float]:
    return {
        "precision": round(t.precision, 4),
        "false_hit_rate": round(t.false_hit_rate, 4),
        "should_hit_served": round(t.should_hit_served, 4),
        "wrong_hit_rate": round(t.wrong_hit_rate, 4),
    }


def report(result: Replay, out: TextIO) -> dict[str, Any]:
    """The table per window, learned against static, and (last line) the figures as JSON."""
    print(
        f"calibrated cut {result.calibrated:.3f}, bound {result.bound:.2%}, "
        f"sample {result.sample:.0%}, seed {result.seed}, {result.learned.items} pairs"
        + (f", {result.noise:.0%} of right answers judged wrong" if result.noise else ""),
        file=out,
    )
    print(
        "window    cut  served  false-hit  should-hit served  must-not-hit served  samples",
        file=out,
    )
    taken = 0
    for i, w in enumerate(result.windows, 1):
        taken += w.samples
        print(
            f"{i:>6}  {w.cut:5.3f}  {w.served:>6}  {w.false_hit_rate:9.2%}  "
            f"{w.should_hit_served:8.1%} of {w.same:<5}  "
            f"{w.wrong_hit_rate:10.1%} of {w.different:<5}  {taken:>7}",
            file=out,
        )
    print(file=out)
    print(
        "          precision  false-hit  should-hit served  must-not-hit served  final cut",
        file=out,
    )
    for name, t in (("learned", result.learned), ("static", result.static)):
        print(
            f"{name:<8}  {t.precision:9.2%}  {t.false_hit_rate:9.2%}  "
            f"{t.should_hit_served:17.1%}  {t.wrong_hit_rate:19.1%}  {t.cut:9.3f}",
            file=out,
        )
    last = result.windows[-1]
    summary: dict[str, Any] = {
        "pairs": result.learned.items,
        "bound": result.bound,
        "sample": result.sample,
        "noise": result.noise,
        "calibrated": result.calibrated,
        "final_cut": result.learned.cut,
        "learned": figures(result.learned)
        | {"last_window_false_hit_rate": round(last.false_hit_rate, 4)},
        "static": figures(result.static),
    }
    print(json.dumps(summary), file=out)
    return summary


def run_bound_sim(
    pairs: str,
    split: str | None,
    bound: float,
    sample: float,
    seed: int,
    limit: int | None,
    no_cross_encoder: bool = False,
    *,
    embedder: Embedder | None = None,
    noise: float = 0.0,
) -> int:
    """The command: score the pairs with the real cache, replay them, print the figures; 0 on
    success, 2 when the pairs cannot be read."""
    policy = policy_from_rules(None).model_copy(update={"cross_encoder": not no_cross_encoder})
    try:
        loaded = load_pairs(pairs, limit, split)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read pairs from {pairs}: {exc}", file=sys.stderr)
        return 2
    # Every pair's score, down to 0: the replay decides which are served.
    outcomes, calibrated = score_pairs(loaded, policy, None, True, embedder=embedder, lowest=0.0)
    scores = [(o.score, o.pair.same and o.own, o.pair.same) for o in outcomes]
    report(replay(scores, bound, calibrated, sample, seed, noise=noise), sys.stdout)
    return 0
