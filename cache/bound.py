"""An operator-set false-hit bound per alias, held online from verified samples.

When to use: the ``SemanticCache`` stage keeps one ``HitBound`` per alias whose policy sets
``max_false_hit_rate`` (and ``verify_sample`` > 0, which supplies the evidence). It is the
per-alias form of vCache's idea (a threshold learned online from verified samples under an
error bound the operator sets), not its per-entry form.

Policy:
- Each verified hit is one sample: agreed (the fresh answer means the same) or not.
- When the disagreement rate is above the bound with 95% confidence (the Wilson interval's
  lower end exceeds it, after at least ``MIN_SAMPLES`` samples), the alias's verifier cut rises
  by ``STEP`` (towards 0.999) and the count starts again: the cache serves fewer, surer hits.
- When it is under the bound with 95% confidence (the interval's upper end is below it, after
  at least ``RELAX_SAMPLES`` samples), the cut falls back by ``STEP``, never below the
  calibrated cut it started from.
- Disagreement over-counts false hits (answers that vary by nature disagree too), so the bound
  errs on the safe side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SAMPLES = 20
RELAX_SAMPLES = 200
STEP = 0.01
CEILING = 0.999
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


@dataclass(slots=True)
class HitBound:
    """The current cut of one alias and the samples seen since it was set."""

    bound: float  # the operator's largest acceptable false-hit rate
    floor_cut: float  # the calibrated cut: never relaxed below it
    cut: float
    samples: int = 0
    disagreements: int = 0

    def observe(self, agreed: bool) -> float:
        """Record one verified hit; the cut to use from now on."""
        self.samples += 1
        self.disagreements += not agreed
        lower, upper = wilson(self.disagreements, self.samples)
        if self.samples >= MIN_SAMPLES and lower > self.bound and self.cut < CEILING:
            self._move(min(CEILING, self.cut + STEP))
        elif self.samples >= RELAX_SAMPLES and upper < self.bound and self.cut > self.floor_cut:
            self._move(max(self.floor_cut, self.cut - STEP))
        return self.cut

    def _move(self, cut: float) -> None:
        self.cut = round(cut, 4)
        self.samples = self.disagreements = 0
