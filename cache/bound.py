"""An operator-set false-hit bound per alias, held online from verified samples.

When to use: the ``SemanticCache`` stage keeps one ``HitBound`` per alias whose policy sets
``max_false_hit_rate`` (and ``verify_sample`` > 0, which supplies the evidence);
``tiergate eval cache-bound`` replays a labelled stream through the same class. It is the
per-alias form of vCache's idea (a threshold learned online from verified samples under an
error bound the operator sets), not its per-entry form.

Policy:
- A sample is the verifier's probability ``p`` for the best candidate of a sampled request and
  whether that candidate's answer agreed with a fresh one. Hits give samples above the cut
  (their answer is re-asked upstream); near misses give samples below it, for free: the
  upstream answered the request anyway, and its answer is compared with the refused
  candidate's (vCache's "explore"). Both kinds are sampled at the same rate, so the samples at
  or above any cut stand for the traffic the cache would serve at that cut.
- On each sample, in this order (the grid: 0.01 apart, from ``lowest``, the calibrated cut
  minus ``SPAN``, up to ``CEILING``):
  1. Over the bound: when at least ``MIN_SAMPLES`` samples at or above the current cut show
     the disagreement rate above the bound with 95% confidence (the Wilson interval's lower end
     above it), the cut rises at once to the lowest one whose samples (at least
     ``MIN_SAMPLES``) show a rate within the bound, or to the ceiling when none does.
  2. Room below: else it becomes the lowest cut, at or below the current one, whose samples at
     or above it show the rate under the bound with 95% confidence (the interval's upper end
     below it), and not below the grid point of the lowest sample (no evidence there).
  3. A lowered cut whose evidence has left the window goes back up: to the lowest cut under
     the calibrated one that is still shown safe, else to the calibrated cut.
  4. Else it stays: the cut never rises without evidence of a violation. With few samples
     nothing moves: 0 disagreements in about 385 samples are needed before a 1% bound can
     lower the cut.
- The last ``WINDOW`` samples count, so the cut follows traffic that changes; with replicas
  sharing counts in Redis (cache.bound_store), the last day's.
- Disagreement over-counts false hits (answers that vary by nature disagree too), so the bound
  errs on the safe side. The 95% holds per cut; the scan over the grid makes it a little
  optimistic, which the over-count offsets.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field

STEP = 0.01
MIN_SAMPLES = 20  # samples at the current cut before it may rise
CEILING = 0.999
SPAN = 0.3  # how far below the calibrated cut the learned one may go
WINDOW = 5000
Z = 1.96


def wilson(failures: int, samples: int) -> tuple[float, float]:
    """The 95% Wilson interval of a rate observed as ``failures`` of ``samples``."""
    if samples == 0:
        return 0.0, 1.0
    p = failures / samples
    z2 = Z * Z
    centre = p + z2 / (2 * samples)
    margin = Z * math.sqrt(p * (1 - p) / samples + z2 / (4 * samples * samples))
    scale = 1 + z2 / samples
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


def grid(lowest: float) -> list[float]:
    """The cuts the bound may choose, from ``lowest`` up to ``CEILING``."""
    cuts = [round(lowest + STEP * i, 4) for i in range(int((CEILING - lowest) / STEP) + 1)]
    return [c for c in cuts if c < CEILING] + [CEILING]


@dataclass(slots=True)
class HitBound:
    """The learned cut of one alias and the samples it was learned from."""

    bound: float  # the operator's largest acceptable false-hit rate among served hits
    calibrated: float  # the artifact's cut: where the cut starts
    scale: str = ""  # which verifier's probability the samples are on (cross-encoder, trees)
    cut: float = -1.0
    lowest: float = -1.0
    samples: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _grid: list[float] = field(default_factory=list)
    # per grid point: the samples from it up to the next point, and how many disagreed (kept
    # as the window slides, so a sample costs O(grid), not a sort of the window)
    _seen: list[int] = field(default_factory=list)
    _failed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cut < 0:
            self.cut = self.calibrated
        if self.lowest < 0:
            self.lowest = round(max(0.0, self.calibrated - SPAN), 4)
        self._grid = grid(self.lowest)
        self._seen = [0] * len(self._grid)
        self._failed = [0] * len(self._grid)

    def wants(self, p: float | None) -> bool:
        """Whether a candidate scored ``p`` is worth a sample (high enough to ever be served)."""
        return p is not None and p >= self.lowest

    def observe(self, p: float, agreed: bool) -> float:
        """Record one verified candidate (its probability, whether it agreed); the cut to use
        from now on."""
        if p < self.lowest:
            return self.cut
        if len(self.samples) == self.samples.maxlen:
            self._count(*self.samples[0], -1)  # the oldest leaves the window
        self.samples.append((p, agreed))
        self._count(p, agreed, 1)
        self.cut = self._choose()
        return self.cut

    def index(self, p: float) -> int:
        """The grid point whose counts a sample scored ``p`` adds to."""
        return max(0, bisect_right(self._grid, p) - 1)

    @property
    def points(self) -> int:
        return len(self._grid)

    @property
    def count(self) -> int:
        """The samples the cut was learned from."""
        return sum(self._seen)

    def adopt(self, seen: list[int], failed: list[int]) -> float:
        """Replace the counts with ones summed elsewhere (every replica's: cache.bound_store);
        the cut to use from now on. The local window then only adds to them until the next."""
        if len(seen) != len(self._grid) or len(failed) != len(self._grid):
            raise ValueError("counts for another grid")
        self._seen, self._failed = list(seen), list(failed)
        self.samples.clear()  # its samples are in the sums; evicting them would count twice
        if any(seen):
            self.cut = self._choose()
        return self.cut

    def _count(self, p: float, agreed: bool, by: int) -> None:
        i = self.index(p)
        self._seen[i] = max(0, self._seen[i] + by)
        self._failed[i] = max(0, self._failed[i] + by * (not agreed))

    def _choose(self) -> float:
        counts: dict[float, tuple[int, int]] = {}
        seen = failed = 0
        reached = len(self._grid) - 1  # the lowest grid point any sample vouches for
        for i in range(len(self._grid) - 1, -1, -1):  # from the ceiling down
            seen += self._seen[i]
            failed += self._failed[i]
            counts[self._grid[i]] = (failed, seen)
            if self._seen[i]:
                reached = i
        failed, seen = counts[self._at(self.cut)]
        if seen >= MIN_SAMPLES and wilson(failed, seen)[0] > self.bound:  # over: rise
            above = [c for c in self._grid if c > self.cut and within(*counts[c], self.bound)]
            return above[0] if above else CEILING
        safe = [
            c
            for c in self._grid[reached:]
            if c <= self.cut + 1e-9 and seen_ok(*counts[c], self.bound)
        ]
        if safe:  # room: come down (never up without evidence of a violation)
            return safe[0]
        if self.cut < self.calibrated - 1e-9:  # lowered, and its evidence has left the window
            back = [
                c
                for c in self._grid[reached:]
                if self.cut < c < self.calibrated and seen_ok(*counts[c], self.bound)
            ]
            return back[0] if back else self.calibrated
        return self.cut

    def _at(self, cut: float) -> float:
        """The grid point at or just below ``cut``."""
        return self._grid[max(0, bisect_right(self._grid, cut + 1e-9) - 1)]


def within(failures: int, samples: int, bound: float) -> bool:
    """At least ``MIN_SAMPLES`` samples, and the rate they show is at most ``bound``."""
    return samples >= MIN_SAMPLES and failures <= bound * samples


def seen_ok(failures: int, samples: int, bound: float) -> bool:
    """The rate is under ``bound`` with 95% confidence."""
    return samples > 0 and wilson(failures, samples)[1] < bound
