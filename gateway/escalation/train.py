"""Train the learned escalation gate: ``tiergate train escalation --data FILE.jsonl --out DIR``.

Use it to rebuild ``routing_rules/artifacts/escalation/gate.json`` from labeled data (lines
``{"prompt", "weak", "strong", "weak_response"}``). Policy, so the figures predict unseen data:
- the held-out split (``dataset.in_test_split``, ~30% of prompts by hash) is never trained on and
  never used to choose anything; only ``tiergate eval escalation --split test`` reads it;
- the regularisation is chosen by repeated 5-fold cross-validation on the rest, by the gap
  recovered at 30% and 40% escalation with the rule gates applied first (as served);
- the final model is an L2 logistic regression on standardised features, fitted on all training
  rows; the output is deterministic (fixed folds, rounded weights).
numpy and scikit-learn are needed here only (the ``dev`` extra), never at serving.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.escalation.dataset import (
    SPLIT_RULE,
    TEST_PERCENT,
    Row,
    file_sha256,
    in_test_split,
    prompt_hash,
    read_rows,
)
from gateway.escalation.features import FEATURE_NAMES, extract
from gateway.escalation.gates import Answer, AnswerPresentGate, ArithmeticGate
from gateway.escalation.outcomes import point
from gateway.escalation.verifier import ARTIFACT_FORMAT

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SELECT_SHARES = (0.3, 0.4)
FOLDS = 5
REPEATS = 4
QUANTILES = 200
MAX_TOTAL_SHARE = 0.38  # the recommended operating point stays under the 40% target
DIGITS = 6


@dataclass(frozen=True, slots=True)
class Trained:
    """What training produced: the artifact's JSON and the report written beside it."""

    artifact: dict[str, Any]
    report: dict[str, Any]


def rule_failures(rows: Sequence[Row]) -> list[bool]:
    """Rows the shipped rule gates (arithmetic, answer present) already escalate."""
    gates = (ArithmeticGate(0), AnswerPresentGate("auto"))
    out = []
    for row in rows:
        answer = Answer(row.prompt, row.weak_response, None, None, None, None)
        out.append(any(not g.judge(answer).passed for g in gates))
    return out


def _top_share(scores: Sequence[float], forced: Sequence[bool], share: float) -> list[bool]:
    """Forced rows, then the highest scores, until ``share`` of rows are escalated."""
    escalated = list(forced)
    want = round(share * len(scores))
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if sum(escalated) >= want:
            break
        escalated[i] = True
    return escalated


def _cv_scores(x: Any, y: Any, c: float, seed: int) -> Any:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for fit_idx, held_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, y):
        model = _fit(x[fit_idx], y[fit_idx], c)
        oof[held_idx] = model.predict_proba(x[held_idx])[:, 1]
    return oof


def _fit(x: Any, y: Any, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(x, y)


def _select(
    rows: Sequence[Row], x: Any, y: Any, c_grid: Sequence[float], repeats: int
) -> tuple[float, list[dict[str, Any]], Any]:
    """Cross-validate every C; return the best, the table and its out-of-fold scores."""
    from sklearn.metrics import roc_auc_score

    weak = [r.weak for r in rows]
    strong = [r.strong for r in rows]
    forced = rule_failures(rows)
    table = []
    best: tuple[float, float, Any] | None = None
    for c in c_grid:
        gaps, aucs, folds = [], [], []
        for seed in range(repeats):
            oof = _cv_scores(x, y, c, seed)
            folds.append(oof)
            aucs.append(float(roc_auc_score(y, oof)))
            for share in SELECT_SHARES:
                escalated = _top_share(list(oof), forced, share)
                gaps.append(point(weak, strong, escalated).gap_recovered)
        mean_gap = sum(gaps) / len(gaps)
        table.append(
            {
                "C": c,
                "cv_gap_recovered": round(mean_gap, 4),
                "cv_auc": round(sum(aucs) / len(aucs), 4),
            }
        )
        if best is None or mean_gap > best[1] + 1e-9:  # ties keep the smaller C
            best = (c, mean_gap, folds)
    assert best is not None
    return best[0], table, best[2]


def _recommend(rows: Sequence[Row], folds: Sequence[Any]) -> tuple[float, list[dict[str, float]]]:
    """The learned gate's share whose union with the rule gates stays under MAX_TOTAL_SHARE,
    from out-of-fold scores (the curve is averaged over the CV repeats)."""
    weak = [r.weak for r in rows]
    strong = [r.strong for r in rows]
    forced = rule_failures(rows)
    curve = []
    chosen = 0.0
    for step in range(10, 51):
        share = step / 100
        points = []
        for oof in folds:
            scores = [float(v) for v in oof]
            cut = sorted(scores, reverse=True)[max(0, round(share * len(scores)) - 1)]
            escalated = [f or s >= cut for f, s in zip(forced, scores, strict=True)]
            points.append(point(weak, strong, escalated))
        total = float(sum(p.escalation_rate for p in points) / len(points))
        gap = float(sum(p.gap_recovered for p in points) / len(points))
        curve.append(
            {
                "learned_share": share,
                "escalation_rate": round(total, 4),
                "gap_recovered": round(gap, 4),
            }
        )
        if total <= MAX_TOTAL_SHARE:
            chosen = share
    return chosen, curve


def train(
    rows: Sequence[Row], c_grid: Sequence[float] = C_GRID, repeats: int = REPEATS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the gate on ``rows`` (the caller has removed the held-out split)."""
    import numpy as np

    x = np.array([extract(r.prompt, r.weak_response).values for r in rows])
    y = np.array([1 - r.weak for r in rows])  # 1: the cheap answer is wrong
    c, table, folds = _select(rows, x, y, c_grid, repeats)
    share, curve = _recommend(rows, folds)
    model = _fit(x, y, c)
    scaler, logistic = model[0], model[-1]
    scores = np.sort(model.predict_proba(x)[:, 1])
    quantiles = [float(np.quantile(scores, i / QUANTILES)) for i in range(QUANTILES + 1)]
    coef = [round(float(v), DIGITS) for v in logistic.coef_[0]]
    artifact = {
        "format": ARTIFACT_FORMAT,
        "feature_names": list(FEATURE_NAMES),
        "mean": [round(float(v), DIGITS) for v in scaler.mean_],
        "scale": [round(float(v), DIGITS) for v in scaler.scale_],
        "coef": coef,
        "intercept": round(float(logistic.intercept_[0]), DIGITS),
        "quantiles": [round(q, DIGITS) for q in quantiles],
    }
    report = {
        "model": f"logistic regression, L2, C={c}, standardised features",
        "cv": {
            "folds": FOLDS,
            "repeats": repeats,
            "criterion": f"mean gap recovered at {list(SELECT_SHARES)} escalated, rules first",
            "table": table,
        },
        "recommended_escalate_share": share,
        "cv_curve": curve,
        "weights": dict(zip(FEATURE_NAMES, coef, strict=True)),
    }
    return artifact, report


def train_files(
    data: Path,
    out: Path,
    manifest: Path | None,
    c_grid: Sequence[float] = C_GRID,
    repeats: int = REPEATS,
) -> dict[str, Any]:
    """Read ``data``, hold out the test split, train, write ``gate.json`` and ``training.json``
    into ``out`` (and the split manifest to ``manifest``); return the report."""
    import sklearn

    rows = read_rows(data)
    train_rows = [r for r in rows if not in_test_split(r.prompt)]
    test_hashes = sorted(prompt_hash(r.prompt)[:16] for r in rows if in_test_split(r.prompt))
    artifact, report = train(train_rows, c_grid, repeats)
    split = {
        "data": data.name,
        "data_sha256": file_sha256(data),
        "rows": len(rows),
        "rule": SPLIT_RULE,
        "test_percent": TEST_PERCENT,
        "train_rows": len(train_rows),
        "test_rows": len(test_hashes),
    }
    report = {"data": split, "scikit_learn": sklearn.__version__, **report}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate.json").write_text(json.dumps(artifact, indent=1) + "\n")
    (out / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    if manifest is not None:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        body = {**split, "test_prompt_sha256_16": test_hashes}
        manifest.write_text(json.dumps(body, indent=1) + "\n")
    return report
