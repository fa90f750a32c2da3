"""``tiergate eval cache-models``: rank cross-encoder artifacts by how they order pairs.

When to use: choosing between trained cross-encoders (``tiergate train cache-verifier --kind
cross-encoder`` into other paths) before one is shipped, on ``dev``; the shipped one's figures on
``test`` are reported once, after the choice. ``tiergate eval cache`` measures the whole lookup
at the shipped cut; this measures the scores themselves, at every cut.

For the balanced Quora pairs of the split it prints, for the trees alone, each model alone and
each model weighed with the trees as its card says: the ROC AUC, the precision at 40% recall
(the issue's operating point), the best F1 over all cuts, and, at the card's cut, precision and
recall; for the generated traps of the split, the share of paraphrases served and the worst
trap category at that cut. A pair whose bi-encoder cosine is under the floor is never served
(as in the cache). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cache.cross_encoder import CE_ARTIFACT, CE_MAX, CrossEncoder, combine

Scores = npt.NDArray[np.float64]
Labels = npt.NDArray[np.bool_]
RECALL = 0.40


def roc_auc(scores: Scores, y: Labels) -> float:
    """The probability that a random duplicate outscores a random non-duplicate (ties: half);
    NaN when the pairs are all of one kind."""
    from sklearn.metrics import roc_auc_score

    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, scores))


def precision_at_recall(scores: Scores, y: Labels, recall: float = RECALL) -> float:
    """Precision of the highest-scored pairs that first reach ``recall`` of the duplicates."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(y[order])
    k = int(np.searchsorted(tp, recall * y.sum())) + 1
    return float(tp[min(k, len(tp)) - 1] / min(k, len(tp)))


def best_f1(scores: Scores, y: Labels) -> float:
    """The highest F1 over every cut."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(y[order])
    return float((2 * tp / (np.arange(1, len(y) + 1) + y.sum())).max())


def at_cut(scores: Scores, y: Labels, cut: float) -> tuple[float, float]:
    """Precision and recall of the pairs served at ``cut``."""
    served = scores >= cut
    tp = float((served & y).sum())
    return tp / max(1, int(served.sum())), tp / max(1, int(y.sum()))


def curve_figures(scores: Scores, y: Labels) -> dict[str, float]:
    return {
        "auc": round(roc_auc(scores, y), 4),
        "precision_at_40_recall": round(precision_at_recall(scores, y), 4),
        "best_f1": round(best_f1(scores, y), 4),
    }


def model_figures(
    ce: CrossEncoder,
    quora: Sequence[tuple[str, str, bool, str]],
    trees_q: tuple[Scores, Scores],
    traps: Sequence[tuple[str, str, bool, str]],
    trees_t: tuple[Scores, Scores],
) -> dict[str, Any]:
    """One model's figures, alone and weighed with the trees at its card's weights and cut."""
    from gateway.eval.ce_train import category_rates

    y = np.array([p[2] for p in quora])
    alone = np.minimum(ce.score_pairs([(a, b) for a, b, _, _ in quora]), CE_MAX)
    on_traps = np.minimum(ce.score_pairs([(a, b) for a, b, _, _ in traps]), CE_MAX)
    decided = np.where(trees_q[1] >= ce.floor, combine(trees_q[0], alone, *_weights(ce)), 0.0)
    decided_t = np.where(trees_t[1] >= ce.floor, combine(trees_t[0], on_traps, *_weights(ce)), 0.0)
    precision, recall = at_cut(decided, y, ce.threshold)
    rates = category_rates(traps, decided_t, ce.threshold)
    wrong = {k: v["wrong"] for k, v in rates.items() if "wrong" in v}
    worst = max(wrong, key=lambda k: wrong[k]) if wrong else ""
    return {
        "alone": curve_figures(alone, y),
        "decision": curve_figures(decided, y)
        | {
            "weights": list(_weights(ce)),
            "cut": ce.threshold,
            "precision_at_cut": round(precision, 4),
            "recall_at_cut": round(recall, 4),
            "paraphrases_served": rates.get("paraphrase", {}).get("served", 0.0),
            "worst_trap": [worst, wrong.get(worst, 0.0)],
        },
    }


def _weights(ce: CrossEncoder) -> tuple[float, float]:
    return ce.tree_weight, ce.ce_weight


def run_compare(split: str, models: Sequence[Path], quora_limit: int | None) -> int:
    from gateway.eval.ce_train import FLOOR, string_rows, tree_scores
    from gateway.settings import Settings

    quora = string_rows("quora", split, quora_limit)
    traps = string_rows("traps", split)
    cache = Settings().model_cache
    trees_q, trees_t = tree_scores(quora, cache), tree_scores(traps, cache)
    y = np.array([p[2] for p in quora])
    out: dict[str, Any] = {
        "split": split,
        "quora_pairs": len(quora),
        "trap_pairs": len(traps),
        "trees": curve_figures(np.where(trees_q[1] >= FLOOR, trees_q[0], 0.0), y),
    }
    print(f"{split}: {len(quora)} balanced Quora pairs, {len(traps)} generated trap pairs")
    print(f"{'trees alone':<48} {_row(out['trees'])}")
    for path in models:
        ce = CrossEncoder.load(path, path.with_suffix(".json"))
        figures = model_figures(ce, quora, trees_q, traps, trees_t)
        out[str(path)] = figures
        d = figures["decision"]
        print(f"{str(path)[-40:] + ' alone':<48} {_row(figures['alone'])}")
        print(
            f"{'  weighed ' + str(d['weights']):<48} {_row(d)} | cut {d['cut']}: "
            f"P {d['precision_at_cut']:.3f} R {d['recall_at_cut']:.3f}, paraphrases "
            f"{d['paraphrases_served']:.3f}, worst trap {d['worst_trap'][0]} "
            f"{d['worst_trap'][1]:.4f}"
        )
    print(json.dumps(out))
    return 0


def _row(f: dict[str, Any]) -> str:
    return (
        f"AUC {f['auc']:.3f}  P@R40 {f['precision_at_40_recall']:.3f}  best F1 {f['best_f1']:.3f}"
    )


DEFAULT_MODELS = (CE_ARTIFACT,)
