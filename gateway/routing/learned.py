"""The learned router: how much a prompt gains from the strong tier, from its text and embedding.

When to use: the router stage loads one ``LearnedRouter`` per artifact directory at rules load
(``LearnedRouter.load``), calls ``score(text, embedding)`` once per call and compares it with
``threshold_for(strong_share)``. Numpy only at serving: no torch, no scikit-learn, no I/O.

The model (trained by ``tiergate train router``; see docs/router.md for why each part):
- a **group prior**: a naive-Bayes classifier over the prompt's hashed words (plus, with the
  embedding, a softmax layer over it) guesses which training group (an MMLU subject, "gsm8k")
  the prompt belongs to; the score part is the posterior-weighted mean gain of those groups,
  where a group's gain is its smoothed mean of strong - weak on the training data;
- a **words model**: a 4-way softmax over (weak right?, strong right?) on the hashed words and
  shape statistics; its part is P(weak wrong, strong right) - P(weak right, strong wrong), the
  expected gain of sending this prompt to the strong tier;
- an **outcome model**: the same 4-way softmax on the embedding and shape statistics;
- **neighbours**: the mean gain of the ``k`` most similar training prompts (cosine over
  embeddings, stored as int8);
- the score is a weighted sum of the parts, weights chosen by cross-validated APGR.
``threshold_for`` reads the quantiles of the training prompts' scores, so ``strong_share: 0.2``
sends about 20% of traffic like the training data's to the strong tier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.routing.features import shape_stats, sparse_terms

META_FILE = "router.json"
WEIGHTS_FILE = "weights.npz"
FORMAT = 1
Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class Parts:
    """The score's parts for one prompt (kept apart for tests and the training report)."""

    prior: float
    words: float
    outcome: float
    neighbours: float

    def vector(self) -> tuple[float, float, float, float]:
        return (self.prior, self.words, self.outcome, self.neighbours)


@dataclass(frozen=True, slots=True)
class LearnedRouter:
    """A trained router artifact in memory (float32 arrays, read-only after load)."""

    meta: dict[str, Any]
    dim: int
    nb_table: Array | None  # (dim, groups) log P(term | group), summed over distinct terms
    nb_prior: Array | None  # (groups,) log P(group)
    nb_temperature: float
    group_gain: Array | None  # (groups,)
    emb_group: Array | None  # (embedding dim + 1, groups): softmax layer, last row = bias
    stats_mean: Array
    stats_std: Array
    words: Array | None  # (dim + stats + 1, 4) softmax over (w0s0, w0s1, w1s0, w1s1)
    outcome: Array | None  # (embedding dim + stats + 1, 4) softmax over (w0s0, w0s1, w1s0, w1s1)
    neighbours: Array | None  # (n, embedding dim) unit vectors * 127 (stored as int8)
    neighbour_gain: Array | None  # (n,)
    k: int
    weights: tuple[float, float, float, float]  # prior, words, outcome, neighbours
    quantiles: Array  # score quantiles of the training prompts, 0..1 in 1000 steps

    @classmethod
    def load(cls, directory: Path) -> LearnedRouter:
        """Read ``router.json`` and ``weights.npz`` (a few MB, a few ms)."""
        meta: dict[str, Any] = json.loads((directory / META_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{directory}: router artifact format {meta.get('format')!r}")
        with np.load(directory / WEIGHTS_FILE) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls.from_arrays(arrays, meta)

    @classmethod
    def from_arrays(cls, arrays: dict[str, Array], meta: dict[str, Any]) -> LearnedRouter:
        """Build from the artifact's arrays (as stored: float16 tables, int8 neighbours)."""

        def f32(name: str) -> Array | None:
            return arrays[name].astype(np.float32) if name in arrays else None

        model = meta["model"]
        weights = [float(w) for w in model["weights"]]
        return cls(
            meta=meta,
            dim=int(model["dim"]),
            nb_table=f32("nb_table"),
            nb_prior=f32("nb_prior"),
            nb_temperature=float(model["nb_temperature"]),
            group_gain=f32("group_gain"),
            emb_group=f32("emb_group"),
            stats_mean=arrays["stats_mean"].astype(np.float64),
            stats_std=arrays["stats_std"].astype(np.float64),
            words=f32("words"),
            outcome=f32("outcome"),
            # Stored int8 (unit vectors * 127); float32 in memory so a score is one fast matmul.
            neighbours=f32("neighbours"),
            neighbour_gain=f32("neighbour_gain"),
            k=int(model.get("k", 0)),
            weights=(weights[0], weights[1], weights[2], weights[3]),
            quantiles=arrays.get("quantiles", np.zeros(2)).astype(np.float64),
        )

    @property
    def needs_embedding(self) -> bool:
        """True if ``score`` uses the prompt's MiniLM embedding (pass None only when False)."""
        return self.emb_group is not None or self.outcome is not None or self.neighbours is not None

    @property
    def version(self) -> str:
        """The weights' content hash (12 hex digits), for Notes and logs."""
        return str(self.meta["version"])

    @property
    def split_seed(self) -> int:
        return int(self.meta.get("training", {}).get("split_seed", 0))

    def score(self, text: str, embedding: Array | None) -> float:
        """Higher = more to gain from the strong tier. Pure CPU; well under 1 ms without the
        embedding. Pass the embedding whenever ``needs_embedding``: without it only the word-based
        parts count, and the calibrated thresholds assume all parts."""
        parts = self.parts(text, embedding).vector()
        return float(sum(w * p for w, p in zip(self.weights, parts, strict=True)))

    def parts(self, text: str, embedding: Array | None) -> Parts:
        index, value = sparse_terms(text, self.dim)
        vector = None if embedding is None else np.asarray(embedding, dtype=np.float32).ravel()
        prior = 0.0
        if self.nb_table is not None and self.nb_prior is not None and self.group_gain is not None:
            logits = (self.nb_table[index].sum(axis=0) + self.nb_prior) / self.nb_temperature
            if vector is not None and self.emb_group is not None:
                logits = logits + vector @ self.emb_group[:-1] + self.emb_group[-1]
            prior = float(_softmax(logits) @ self.group_gain)
        stats = ((shape_stats(text) - self.stats_mean) / self.stats_std).astype(np.float32)
        words = outcome = neighbours = 0.0
        if self.words is not None:
            n = self.dim
            z = value * self.words[index].sum(axis=0) + stats @ self.words[n:-1] + self.words[-1]
            p = _softmax(z)
            words = float(p[1] - p[2])
        if vector is not None and self.outcome is not None:
            features = np.concatenate([vector, stats])
            p = _softmax(features @ self.outcome[:-1] + self.outcome[-1])
            outcome = float(p[1] - p[2])
        if vector is not None and self.neighbours is not None and self.neighbour_gain is not None:
            sims = self.neighbours @ vector
            k = min(self.k, len(sims))
            top = np.argpartition(-sims, k - 1)[:k]
            neighbours = float(self.neighbour_gain[top].mean())
        return Parts(prior, words, outcome, neighbours)

    def threshold_for(self, strong_share: float) -> float:
        """The score above which about ``strong_share`` of the training prompts scored."""
        if not 0.0 <= strong_share <= 1.0:
            raise ValueError("strong_share must be within 0..1")
        if strong_share == 0.0:
            return float("inf")
        return float(np.quantile(self.quantiles, 1.0 - strong_share))


def _softmax(z: Array) -> Array:
    e = np.exp(z - z.max())
    out: Array = e / e.sum()
    return out
