"""Train the semantic cache's hit verifier (cache.verifier) and calibrate its threshold.

When to use: ``tiergate train cache-verifier`` (gateway/train_cli.py) after changing the
features, the generated sets or the embedding model; it rewrites cache/artifacts/verifier.json.

Method (the ``test`` split is never read here):
- Data: ``train`` split of gateway.eval.devsets: the labeled Quora pairs (at most
  ``QUORA_TRAIN`` of them, first by hash) and the traps generated from its duplicate pairs.
  Each pair is embedded with the process's model (vectors kept on disk) and turned into
  ``pair_features(asked, cached, cosine)``.
- Model: gradient-boosted regression trees on the logistic loss (``ROUNDS`` trees of depth
  ``DEPTH``, learning rate ``RATE``, exact greedy splits with at least ``MIN_LEAF`` pairs a
  leaf, L2 1.0 on leaf values), fitted in numpy; trap pairs weigh ``TRAP_WEIGHT`` times a Quora
  pair (a wrong hit on a trap is the failure that matters most), the two classes are balanced.
  Deterministic: the same data gives the same artifact byte for byte.
- Calibration, on the ``dev`` split: the lowest probability cut at which every trap category's
  false-hit rate is at most ``target`` and the Quora precision at least ``precision``; the
  cut, the data sources, the split rule and the dev figures go into the artifact.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cache.embedder import Embedder
from cache.guards import features
from cache.verifier import ARTIFACT, COSINE_BINS, FEATURE_NAMES, Tree, Verifier, pair_features
from gateway.eval.devsets import build

QUORA_TRAIN = 24_000
QUORA_DEV = 6_000
TRAP_WEIGHT = 10.0
L2 = 1.0
FLOOR = 0.70
ROUNDS, DEPTH, RATE, MIN_LEAF = 80, 3, 0.2, 20
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Labeled:
    x: Matrix
    y: npt.NDArray[np.bool_]
    category: tuple[str, ...]
    cosine: npt.NDArray[np.float64]


async def featurise(rows: Sequence[dict[str, Any]], embedder: Embedder) -> Labeled:
    """Features of (asked = b, cached = a) for string pairs."""
    texts = list(dict.fromkeys(t for r in rows for t in (r["a"], r["b"])))
    vectors = await embedder.embed(texts)
    where = {t: i for i, t in enumerate(texts)}
    feats = {t: features(t) for t in texts}
    xs, ys, cats, cos = [], [], [], []
    for r in rows:
        c = float(vectors[where[r["a"]]] @ vectors[where[r["b"]]])
        xs.append(pair_features(feats[r["b"]], feats[r["a"]], c))
        ys.append(bool(r["same"]))
        cats.append(str(r["category"]))
        cos.append(c)
    return Labeled(np.array(xs), np.array(ys), tuple(cats), np.array(cos))


def _string_rows(name: str, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    rows = [r for r in build(name, split) if isinstance(r["a"], str)]
    return rows[:limit] if limit else rows


def _best_split(x: Matrix, g: Matrix, h: Matrix) -> tuple[float, int, float]:
    """(gain, feature, cut) of the best split of these rows; feature -1 when none helps."""
    total_g, total_h = g.sum(), h.sum()
    best: tuple[float, int, float] = (0.0, -1, 0.0)
    for f in range(x.shape[1]):
        order = np.argsort(x[:, f], kind="stable")
        xs, gs, hs = x[order, f], np.cumsum(g[order]), np.cumsum(h[order])
        valid = np.nonzero(xs[1:] != xs[:-1])[0]
        valid = valid[(valid + 1 >= MIN_LEAF) & (len(xs) - valid - 1 >= MIN_LEAF)]
        if not len(valid):
            continue
        gl, hl = gs[valid], hs[valid]
        gain = gl**2 / (hl + L2) + (total_g - gl) ** 2 / (total_h - hl + L2)
        gain -= total_g**2 / (total_h + L2)
        i = int(np.argmax(gain))
        if gain[i] > best[0]:
            best = (float(gain[i]), f, float((xs[valid[i]] + xs[valid[i] + 1]) / 2))
    return best


def _grow(x: Matrix, g: Matrix, h: Matrix, depth: int) -> Tree:
    leaf = float(-g.sum() / (h.sum() + L2))
    if depth == 0 or len(g) < 2 * MIN_LEAF:
        return leaf
    _, f, cut = _best_split(x, g, h)
    if f < 0:
        return leaf
    low = x[:, f] <= cut
    return (
        f,
        cut,
        _grow(x[low], g[low], h[low], depth - 1),
        _grow(x[~low], g[~low], h[~low], depth - 1),
    )


def _apply(tree: Tree, x: Matrix) -> Matrix:
    out = np.empty(len(x))

    def visit(node: Tree, rows: npt.NDArray[np.intp]) -> None:
        if not isinstance(node, tuple):
            out[rows] = node
            return
        f, cut, low, high = node
        mask = x[rows, f] <= cut
        visit(low, rows[mask])
        visit(high, rows[~mask])

    visit(tree, np.arange(len(x)))
    return out


def fit(x: Matrix, y: npt.NDArray[np.bool_], weight: Matrix) -> list[Tree]:
    """Gradient boosting on the weighted logistic loss: the trees, in order."""
    target = y.astype(np.float64)
    score = np.zeros(len(y))
    trees: list[Tree] = []
    for _ in range(ROUNDS):
        p = 1 / (1 + np.exp(-score))
        tree = _grow(x, weight * (p - target), weight * p * (1 - p), DEPTH)
        trees.append(tree)
        score += RATE * _apply(tree, x)
    return trees


def probabilities(data: Labeled, trees: Sequence[Tree]) -> Matrix:
    score = RATE * sum((_apply(t, data.x) for t in trees), np.zeros(len(data.x)))
    p: Matrix = 1 / (1 + np.exp(-np.clip(score, -30, 30)))
    return np.where(data.cosine >= FLOOR, p, 0.0)


def figures(data: Labeled, p: Matrix, cut: float) -> dict[str, dict[str, float]]:
    served = p >= cut
    out: dict[str, dict[str, float]] = {}
    for cat in sorted(set(data.category)):
        mask = np.array([c == cat for c in data.category])
        rate = float(served[mask].mean())
        key = "served" if data.y[mask].all() else "wrong"
        out[cat] = {"pairs": int(mask.sum()), key: round(rate, 4)}
    return out


def calibrate(
    traps: Labeled,
    p_traps: Matrix,
    quora: Labeled,
    p_quora: Matrix,
    target: float,
    precision: float,
) -> float:
    """The lowest cut meeting the false-hit target in every trap category and the precision."""
    return lowest_safe_cut(
        traps.category, traps.y, p_traps, quora.y, p_quora, target, precision, 0.005, 0.995
    )


def lowest_safe_cut(
    trap_category: Sequence[str],
    trap_y: Sequence[bool] | npt.NDArray[np.bool_],
    p_traps: npt.NDArray[np.float64],
    quora_y: Sequence[bool] | npt.NDArray[np.bool_],
    p_quora: npt.NDArray[np.float64],
    target: float,
    precision: float,
    step: float,
    fallback: float,
) -> float:
    """The calibration rule of every hit verifier: scanning cuts upward by ``step``, the first at
    which each must-not-hit trap category is served at most ``target`` of the time and the
    Quora pairs served are at least ``precision`` duplicates; ``fallback`` when none is."""
    categories = sorted({c for c, y in zip(trap_category, trap_y, strict=True) if not y})
    masks = [np.array([c == cat for c in trap_category]) for cat in categories]
    y = np.asarray(quora_y, dtype=bool)
    digits = len(f"{step:g}".split(".")[1]) if "." in f"{step:g}" else 0
    for cut in np.round(np.arange(0.05, 1.0, step), digits):
        served = p_traps >= cut
        rates = [float(served[m].mean()) for m in masks]
        q = p_quora >= cut
        prec = float((q & y).sum() / max(1, q.sum()))
        if max(rates) <= target and prec >= precision:
            return float(cut)
    return fallback


def train(
    embedder: Embedder, out: Path = ARTIFACT, target: float = 0.005, precision: float = 0.85
) -> dict[str, Any]:
    started = time.time()

    async def load() -> tuple[Labeled, Labeled, Labeled, Labeled]:
        return (
            await featurise(_string_rows("quora", "train", QUORA_TRAIN), embedder),
            await featurise(_string_rows("traps", "train"), embedder),
            await featurise(_string_rows("quora", "dev", QUORA_DEV), embedder),
            await featurise(_string_rows("traps", "dev"), embedder),
        )

    q_train, t_train, q_dev, t_dev = asyncio.run(load())
    x = np.vstack([q_train.x, t_train.x])
    y = np.concatenate([q_train.y, t_train.y])
    weight = np.concatenate([np.ones(len(q_train.y)), np.full(len(t_train.y), TRAP_WEIGHT)])
    keep = np.concatenate([q_train.cosine, t_train.cosine]) >= FLOOR
    x, y, weight = x[keep], y[keep], weight[keep]
    for label in (True, False):  # balance the classes
        weight[y == label] *= len(y) / (2 * max(1, (y == label).sum()))
    trees = fit(x, y, weight / weight.mean())
    p_q, p_t = probabilities(q_dev, trees), probabilities(t_dev, trees)
    cut = calibrate(t_dev, p_t, q_dev, p_q, target, precision)
    served = p_q >= cut
    dev_quora = {
        "pairs": len(q_dev.y),
        "precision": round(float((served & q_dev.y).sum() / max(1, served.sum())), 4),
        "recall": round(float((served & q_dev.y).sum() / max(1, q_dev.y.sum())), 4),
    }
    meta = {
        "trained_by": "tiergate train cache-verifier",
        "data": {
            "source": "../shared/data/gptcache-qqp (qqp_pairs_labeled.json.gz) and "
            "../shared/data/meancache (qqp_val.csv); traps generated by gateway.eval.devsets",
            "split": "gateway.eval.devsets: connected components of the Quora pair graph, by "
            "SHA-256 of the first normalised question; 70% train / 15% dev / 15% test",
            "train": {"quora_pairs": len(q_train.y), "trap_pairs": len(t_train.y)},
            "calibrated_on": {
                "split": "dev",
                "quora_pairs": len(q_dev.y),
                "trap_pairs": len(t_dev.y),
            },
            "test": "never read by training",
        },
        "calibration": {
            "target_false_hit_rate_per_trap_category": target,
            "min_quora_precision": precision,
            "cosine_floor": FLOOR,
        },
        "dev_figures": {"quora": dev_quora, "traps": figures(t_dev, p_t, cut)},
        "model": {"rounds": ROUNDS, "depth": DEPTH, "learning_rate": RATE, "min_leaf": MIN_LEAF},
        "trap_weight": TRAP_WEIGHT,
        "cosine_bins": list(COSINE_BINS),
        "features": len(FEATURE_NAMES),
    }
    verifier = Verifier(FEATURE_NAMES, tuple(trees), RATE, cut, FLOOR)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(verifier.to_json(meta))
    meta["seconds"] = round(time.time() - started, 1)
    meta["threshold"] = cut
    return meta


def run_train(out: Path, target: float, precision: float, models: Path) -> int:
    from cache.embedder import load_embedder
    from gateway.eval.embedding_store import DiskCachedEmbedder, embeddings_file

    inner = load_embedder(cache_dir=models, lru_size=0, threads=2)
    embedder = DiskCachedEmbedder(inner, embeddings_file(models))
    try:
        meta = train(embedder, out, target, precision)
    finally:
        embedder.save()
    print(json.dumps(meta, indent=1))
    return 0
