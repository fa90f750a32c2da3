"""Baseline routers on the router's held-out test split, to read ``eval router`` figures against.

``python -m gateway.eval.router_baselines FILE.jsonl [--knn]`` prints the protocol's APGR,
CPT(50%) and CPT(80%) on the test split (``gateway.routing.split``) of FILE for: random scores
(mean of 20 seeds), prompt length, a per-subject prior learned on the train split (it READS
the ``subject`` label, which no router may see: a reference, not a router) and, with
``--knn``, the mean gain of the 50 nearest train prompts over MiniLM embeddings (embeds
every prompt of the file: minutes on a busy machine). ``--all`` scores every row instead of the
test split (for a set nothing was trained on, such as MT-bench): random and length only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gateway.routing.evaluate import evaluate_router
from gateway.routing.split import split_of
from gateway.routing.train import embed_all

SMOOTHING = 10.0
K = 50


def baselines(
    rows: list[dict[str, Any]], knn: bool, every_row: bool = False
) -> dict[str, dict[str, float]]:
    """``every_row``: score all rows (nothing to learn from: random and length only)."""
    test = np.array([every_row or split_of(r["prompt"]) == "test" for r in rows])
    weak = np.array([float(r["weak"]) for r in rows])
    strong = np.array([float(r["strong"]) for r in rows])
    gain = strong - weak
    w, s = weak[test], strong[test]
    out: dict[str, dict[str, float]] = {}
    rng = np.random.default_rng(0)
    randoms = [evaluate_router(rng.random(int(test.sum())), w, s) for _ in range(20)]
    out["random (mean of 20 seeds)"] = {
        "apgr": float(np.mean([f.apgr for f in randoms])),
        "cpt50": float(np.mean([f.cpt50 for f in randoms])),
        "cpt80": float(np.mean([f.cpt80 for f in randoms])),
    }
    length = np.array([len(r["prompt"]) for r in rows], dtype=np.float64)
    out["prompt length"] = _figures(length[test], w, s)
    if every_row:
        return out
    if all("subject" in r for r in rows):
        subject = np.array([r["subject"] for r in rows])
        base = float(gain[~test].mean())
        prior = {
            k: (gain[~test][subject[~test] == k].sum() + SMOOTHING * base)
            / ((subject[~test] == k).sum() + SMOOTHING)
            for k in set(subject)
        }
        scores = np.array([prior[k] for k in subject[test]])
        out["per-subject prior (reads the label)"] = _figures(scores, w, s)
    if knn:
        vectors = embed_all([r["prompt"] for r in rows]).astype(np.float64)
        sims = vectors[test] @ vectors[~test].T
        nearest = np.argpartition(-sims, K, axis=1)[:, :K]
        out[f"kNN over MiniLM, k={K}"] = _figures(gain[~test][nearest].mean(axis=1), w, s)
    return out


def _figures(
    scores: np.ndarray[Any, Any], weak: np.ndarray[Any, Any], strong: Any
) -> dict[str, float]:
    f = evaluate_router(scores, weak, strong)
    return {"apgr": f.apgr, "cpt50": f.cpt50, "cpt80": f.cpt80}


def main(argv: list[str]) -> int:
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        print(
            "usage: python -m gateway.eval.router_baselines FILE [--knn] [--all]", file=sys.stderr
        )
        return 2
    path = Path(paths[0])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    every_row = "--all" in argv
    held_out = len(rows) if every_row else sum(split_of(r["prompt"]) == "test" for r in rows)
    print(f"{path.name}: {'all' if every_row else 'test split'} {held_out} prompts")
    for name, f in baselines(rows, "--knn" in argv, every_row).items():
        print(
            f"{name:38s} APGR {f['apgr']:.4f}  CPT(50%) {100 * f['cpt50']:5.1f}%"
            f"  CPT(80%) {100 * f['cpt80']:5.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
