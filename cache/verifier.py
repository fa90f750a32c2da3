"""The learned hit verifier: is a cached question the same question as the one asked?

When to use: ``SemanticLibrary.lookup`` asks it about each of the top candidates the vector
store returns above the cosine floor; of those it accepts, the one it rates highest is
served. Load the shipped model once per process with ``load_verifier()``; ``tiergate train
cache-verifier`` rebuilds it from the shipped data (docs/caching.md).

Policy: a cosine threshold alone cannot tell "Cancel my subscription" from "Don't cancel my
subscription" (0.967), and hand-written guards alone are fitted to their own examples. The
verifier is a small gradient-boosted tree ensemble (80 trees of depth 3, evaluated in pure
Python: about 0.2 ms per candidate) over pair features (``pair_features``: the cosine in bins,
content-word overlap and the shape of the edit, names, numbers, dates, negations, length
ratios, and every near-miss guard's verdict from cache.guards) trained on labeled Quora pairs
and on traps generated from them. Its threshold is not chosen by eye: training
calibrates it on the dev split for a target false-hit rate in every trap category, and writes
it into the artifact beside the data source and split it came from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cache.guards import GUARDS, Features, _forms, _unnamed

ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "verifier.json"
COSINE_BINS = (0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
FEATURE_NAMES: tuple[str, ...] = (
    "cosine",
    *(f"cosine>{b}" for b in COSINE_BINS),
    "content_jaccard",
    "content_only_a",
    "content_only_b",
    "edit_swap_one",
    "edit_add_only",
    "edit_same_content",
    "entities_only_a",
    "entities_only_b",
    "entities_jaccard",
    "numbers_differ",
    "numbers_symdiff",
    "dates_differ",
    "negated_differ",
    "negations_diff",
    "wh_differ",
    "chars_ratio",
    "words_ratio",
    "first_word_same",
    *(f"guard_{name}" for name, _ in GUARDS),
    "any_guard",
    "cosine_x_any_guard",
    *(f"same_content_x_cosine>{b}" for b in COSINE_BINS[2:]),
    *(f"no_guard_x_cosine>{b}" for b in COSINE_BINS[2:]),
)


def _jaccard(x: set[str] | frozenset[str], y: set[str] | frozenset[str]) -> float:
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def _unmatched(x: tuple[str, ...], y: frozenset[str]) -> int:
    return sum(1 for w in set(x) if not (_forms(w) & y))


def _negations(f: Features) -> int:
    return sum(1 for w in f.words if w in ("not", "no", "never", "without") or w.endswith("n't"))


def pair_features(fa: Features, fb: Features, cosine: float) -> list[float]:
    """The verifier's input for one (asked, cached) pair: ``FEATURE_NAMES`` in order."""
    content_a, content_b = set(fa.content), set(fb.content)
    # The shape of the edit: near-miss traps change one detail (a word swapped, a qualifier
    # added), paraphrases reword more, near-repeats change no content word at all.
    edit_a, edit_b = _unmatched(fa.content, fb.wordset), _unmatched(fb.content, fa.wordset)
    only_a, only_b = _unnamed(fa, fb), _unnamed(fb, fa)
    la, lb = sum(map(len, fa.words)), sum(map(len, fb.words))
    na, nb = len(fa.words), len(fb.words)
    guards = [float(guard(fa, fb)) for _, guard in GUARDS]
    any_guard = float(any(guards))
    return [
        cosine,
        *(max(0.0, cosine - b) * 10 for b in COSINE_BINS),
        _jaccard(content_a, content_b),
        float(min(edit_a, 4)),
        float(min(edit_b, 4)),
        float(edit_a == 1 and edit_b == 1),
        float((edit_a == 0) != (edit_b == 0) and max(edit_a, edit_b) <= 3),
        float(edit_a == 0 and edit_b == 0),
        float(min(len(only_a), 3)),
        float(min(len(only_b), 3)),
        _jaccard(set(fa.entities), set(fb.entities)),
        float(fa.numbers != fb.numbers),
        float(min(len(fa.numbers ^ fb.numbers), 4)),
        float(fa.dates != fb.dates),
        float(fa.negated != fb.negated),
        float(min(abs(_negations(fa) - _negations(fb)), 3)),
        float(bool(fa.wh) and bool(fb.wh) and fa.wh != fb.wh),
        min(la, lb) / max(la, lb, 1),
        min(na, nb) / max(na, nb, 1),
        float(bool(fa.words) and bool(fb.words) and fa.words[0] == fb.words[0]),
        *guards,
        any_guard,
        cosine * any_guard,
        # A reworded question with the same content words and no guard firing is a
        # near-repeat: let its cosine count for more than across the board.
        *(float(edit_a == 0 and edit_b == 0) * max(0.0, cosine - b) * 10 for b in COSINE_BINS[2:]),
        *((1.0 - any_guard) * max(0.0, cosine - b) * 10 for b in COSINE_BINS[2:]),
    ]


Tree = float | tuple[int, float, "Tree", "Tree"]  # a leaf value, or (feature, cut, <=, >)


def _leaf(tree: Tree, x: Sequence[float]) -> float:
    while isinstance(tree, tuple):
        feature, cut, low, high = tree
        tree = low if x[feature] <= cut else high
    return tree


def _tree(node: Any) -> Tree:
    if isinstance(node, list):
        return (int(node[0]), float(node[1]), _tree(node[2]), _tree(node[3]))
    return float(node)


@dataclass(frozen=True, slots=True)
class Verifier:
    """Gradient-boosted trees over ``pair_features``; ``threshold`` is the calibrated cut."""

    names: tuple[str, ...]
    trees: tuple[Tree, ...]
    rate: float  # the learning rate each tree's leaf is scaled by
    threshold: float
    floor: float  # cosine under which a candidate is not even scored

    def probability(self, fa: Features, fb: Features, cosine: float) -> float:
        return self.probability_of(pair_features(fa, fb, cosine))

    def probability_of(self, x: Sequence[float]) -> float:
        """The probability for a feature vector (``pair_features``)."""
        z = self.rate * sum(_leaf(tree, x) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def accepts(
        self, fa: Features, fb: Features, cosine: float, threshold: float | None = None
    ) -> bool:
        cut = self.threshold if threshold is None else threshold
        return cosine >= self.floor and self.probability(fa, fb, cosine) >= cut

    def to_json(self, meta: dict[str, object]) -> str:
        body = {
            "kind": "gradient-boosted-trees",
            "names": list(self.names),
            "rate": self.rate,
            "threshold": self.threshold,
            "floor": self.floor,
            **meta,
            "trees": list(self.trees),
        }
        return json.dumps(body, indent=None, separators=(",", ":")) + "\n"


def load_verifier(path: Path = ARTIFACT) -> Verifier:
    """The trained verifier (the shipped artifact by default). Raises ValueError when the file
    was trained on other features than this code computes (retrain: `tiergate train
    cache-verifier`)."""
    body = json.loads(path.read_text())
    if tuple(body["names"]) != FEATURE_NAMES or body.get("kind") != "gradient-boosted-trees":
        raise ValueError(f"{path}: trained on other features; run `tiergate train cache-verifier`")
    return Verifier(
        FEATURE_NAMES,
        tuple(_tree(t) for t in body["trees"]),
        float(body["rate"]),
        float(body["threshold"]),
        float(body["floor"]),
    )
