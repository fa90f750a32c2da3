"""``tiergate train router``: fit the learned router on labeled prompts and write its artifact.

When to use: to rebuild ``routing_rules/artifacts/router`` from the shipped data (the command
is in that directory's README.json), or to train a router on your own traffic's outcomes
(lines ``{"prompt", "weak", "strong", "subject"?}``; a row's group is its ``subject`` when it
has one, else its file's name).

Policy:
- The stable-hash test split (``gateway.routing.split``) is dropped before anything is fitted
  or chosen; every choice (ensemble weights) is made by 5-fold cross-validated APGR on the
  train split, and the figures written beside the artifact are out-of-fold figures.
- Calibration (``threshold_for``) uses the out-of-fold scores of the train prompts: the score
  distribution of prompts the model has not seen, as in serving.
- Deterministic: full-batch optimisation from zeros, fixed step counts, sorted inputs; the same
  data on the same machine gives the same bytes (the content hash is the version).
- Numpy only (no scikit-learn; the fits are in ``regression``): serving evaluates exactly
  what was fitted.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from gateway.routing.evaluate import evaluate_router
from gateway.routing.features import DEFAULT_DIM, shape_stats, sparse_terms
from gateway.routing.learned import FORMAT, META_FILE, WEIGHTS_FILE, LearnedRouter
from gateway.routing.regression import fit_softmax, fit_sparse_softmax
from gateway.routing.split import fold_of, split_of

Array = npt.NDArray[Any]
FOLDS = 5
NB_ALPHA = 0.5
NB_TEMPERATURE = 3.0
GROUP_SMOOTHING = 10.0  # pseudo-rows of the overall mean gain in each group's mean
EMB_GROUP_L2 = 1e-4
OUTCOME_L2 = 1e-3
WORDS_L2 = 1e-3
NEIGHBOURS_K = 50


@dataclass(frozen=True, slots=True)
class Example:
    prompt: str
    weak: float
    strong: float
    group: str
    source: str  # the data file's name (reports only; never a feature)


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Train-split examples with everything the fit needs, computed once."""

    examples: tuple[Example, ...]
    groups: tuple[str, ...]
    group_ids: Array  # (n,)
    gain: Array  # (n,) strong - weak
    outcome_ids: Array  # (n,) 0..3 = 2 * weak + strong (binarised at 0.5)
    terms: tuple[Array, ...]  # per example: distinct hashed buckets
    stats: Array  # (n, stats) raw
    embeddings: Array | None  # (n, d) unit rows


def read_examples(paths: Sequence[Path]) -> list[Example]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row: Any = json.loads(line)
            group = str(row.get("subject") or path.stem)
            weak, strong = float(row["weak"]), float(row["strong"])
            out.append(Example(str(row["prompt"]), weak, strong, group, path.name))
    return out


def embed_all(prompts: Sequence[str]) -> Array:
    """MiniLM embeddings (the semantic cache's embedder, ONNX int8) of ``prompts``, in order,
    one prompt per model call: int8 activations are quantised per call, so a batch partner
    would move the vector slightly. Alone, a prompt's vector is the one serving computes, and
    training is reproducible whatever the order of the data."""
    from cache.embedder import load_embedder

    async def run() -> Array:
        embedder = load_embedder(lru_size=0)
        out = np.zeros((len(prompts), embedder.dim), dtype=np.float32)
        try:
            for i, prompt in enumerate(prompts):
                out[i] = (await embedder.embed([prompt]))[0]
        finally:
            await embedder.aclose()
        return out

    return asyncio.run(run())


def training_set(examples: Sequence[Example], embeddings: Array | None, dim: int) -> TrainingSet:
    groups = tuple(sorted({e.group for e in examples}))
    index = {g: i for i, g in enumerate(groups)}
    return TrainingSet(
        examples=tuple(examples),
        groups=groups,
        group_ids=np.array([index[e.group] for e in examples], dtype=np.int64),
        gain=np.array([e.strong - e.weak for e in examples]),
        outcome_ids=np.array(
            [2 * int(e.weak >= 0.5) + int(e.strong >= 0.5) for e in examples], dtype=np.int64
        ),
        terms=tuple(sparse_terms(e.prompt, dim)[0] for e in examples),
        stats=np.stack([shape_stats(e.prompt) for e in examples]),
        embeddings=None if embeddings is None else embeddings.astype(np.float64),
    )


# --- fitting -------------------------------------------------------------------------------
def fit_naive_bayes(ts: TrainingSet, rows: Array, dim: int) -> tuple[Array, Array]:
    """Bernoulli-style multinomial NB over distinct hashed terms: (dim, groups), (groups,)."""
    k = len(ts.groups)
    counts = np.zeros((dim, k))
    for r in rows:
        counts[ts.terms[r], ts.group_ids[r]] += 1.0
    table = np.log(counts + NB_ALPHA) - np.log(counts.sum(axis=0) + NB_ALPHA * dim)
    prior = np.log(np.bincount(ts.group_ids[rows], minlength=k) + 1.0)
    return table, prior


def group_gains(ts: TrainingSet, rows: Array) -> Array:
    base = float(ts.gain[rows].mean())
    k = len(ts.groups)
    sums = np.bincount(ts.group_ids[rows], weights=ts.gain[rows], minlength=k)
    counts = np.bincount(ts.group_ids[rows], minlength=k)
    out: Array = (sums + GROUP_SMOOTHING * base) / (counts + GROUP_SMOOTHING)
    return out


def quantise_unit_rows(rows: Array) -> Array:
    out: Array = np.clip(np.round(rows * 127.0), -127, 127).astype(np.int8)
    return out


def fit_arrays(ts: TrainingSet, rows: Array, dim: int) -> dict[str, Array]:
    """Every array of the artifact, fitted on ``rows`` of the training set."""
    table, prior = fit_naive_bayes(ts, rows, dim)
    stats_mean = ts.stats[rows].mean(axis=0)
    stats_std = ts.stats[rows].std(axis=0) + 1e-6
    arrays = {
        "nb_table": table,
        "nb_prior": prior,
        "group_gain": group_gains(ts, rows),
        "stats_mean": stats_mean,
        "stats_std": stats_std,
    }
    z = (ts.stats[rows] - stats_mean) / stats_std
    terms = [ts.terms[r] for r in rows]
    arrays["words"] = fit_sparse_softmax(terms, z, ts.outcome_ids[rows], 4, dim, WORDS_L2)
    if ts.embeddings is not None:
        emb = ts.embeddings[rows]
        arrays["emb_group"] = fit_softmax(emb, ts.group_ids[rows], len(ts.groups), EMB_GROUP_L2)
        arrays["outcome"] = fit_softmax(np.hstack([emb, z]), ts.outcome_ids[rows], 4, OUTCOME_L2)
        arrays["neighbours"] = quantise_unit_rows(emb)
        arrays["neighbour_gain"] = ts.gain[rows]
    return arrays


def router_from(arrays: dict[str, Array], meta: dict[str, Any]) -> LearnedRouter:
    """The serving object for freshly fitted arrays (float16 round trip, as when loaded)."""
    buffer = io.BytesIO()
    np.savez(buffer, **_stored(arrays))  # type: ignore[arg-type]
    buffer.seek(0)
    with np.load(buffer) as npz:
        loaded = {name: npz[name] for name in npz.files}
    return LearnedRouter.from_arrays(loaded, meta)


def _stored(arrays: dict[str, Array]) -> dict[str, Array]:
    """float16 for the big tables (half the size; scores move in the 4th decimal)."""
    out = {}
    for name, value in arrays.items():
        if value.dtype == np.int8 or name in ("stats_mean", "stats_std", "quantiles"):
            out[name] = value
        else:
            out[name] = value.astype(np.float16)
    return out


# --- model selection, calibration, artifact ------------------------------------------------
def model_meta(dim: int, k: int, weights: Sequence[float]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": "unsaved",
        "model": {
            "dim": dim,
            "nb_temperature": NB_TEMPERATURE,
            "k": k,
            "weights": [float(w) for w in weights],
        },
    }


def out_of_fold_parts(ts: TrainingSet, dim: int, seed: int, log: TextIO) -> Array:
    """(n, 4) prior/words/outcome/neighbour parts of each train prompt, from a model fitted on the
    other folds (cross-validation)."""
    folds = np.array([fold_of(e.prompt, FOLDS, seed) for e in ts.examples])
    parts = np.zeros((len(ts.examples), 4))
    k = NEIGHBOURS_K if ts.embeddings is not None else 0
    for f in range(FOLDS):
        fit_rows = np.flatnonzero(folds != f)
        router = router_from(fit_arrays(ts, fit_rows, dim), model_meta(dim, k, (1, 0, 0, 0)))
        for r in np.flatnonzero(folds == f):
            emb = None if ts.embeddings is None else ts.embeddings[r]
            p = router.parts(ts.examples[r].prompt, emb)
            parts[r] = p.vector()
        print(f"  fold {f + 1}/{FOLDS} fitted", file=log, flush=True)
    return parts


def weight_grid(parts: int) -> list[tuple[float, ...]]:
    """Every weight vector on the 0.1 simplex over the first ``parts`` parts (others 0)."""
    tenths = range(11)
    out = []
    for a in tenths:
        for b in tenths:
            for c in tenths:
                d = 10 - a - b - c
                vector = (a, b, c, d)
                if d >= 0 and all(x == 0 for x in vector[parts:]):
                    out.append(tuple(x / 10 for x in vector))
    return out


def choose_weights(parts: Array, ts: TrainingSet) -> tuple[tuple[float, ...], float]:
    """The weights (on a 0.1 simplex grid) with the best out-of-fold APGR (100 bins)."""
    weak = np.array([e.weak for e in ts.examples])
    strong = np.array([e.strong for e in ts.examples])
    best: tuple[float, tuple[float, ...]] = (-np.inf, (1.0, 0.0, 0.0, 0.0))
    for weights in weight_grid(4 if ts.embeddings is not None else 2):
        apgr = evaluate_router(parts @ np.array(weights), weak, strong, bins=100).apgr
        if apgr > best[0] + 1e-9:
            best = (apgr, weights)
    return best[1], best[0]


PART_ARRAYS = (
    ("nb_table", "nb_prior", "group_gain", "emb_group"),
    ("words",),
    ("outcome",),
    ("neighbours", "neighbour_gain"),
)


def without_unused_parts(arrays: dict[str, Array], weights: Sequence[float]) -> dict[str, Array]:
    """Drop the arrays of parts weighted 0: a smaller artifact, a faster score, and
    ``needs_embedding`` False when no used part reads the embedding."""
    unused = {
        name for w, names in zip(weights, PART_ARRAYS, strict=True) if not w for name in names
    }
    return {name: value for name, value in arrays.items() if name not in unused}


def write_artifact(out: Path, arrays: dict[str, Array], meta: dict[str, Any]) -> tuple[Path, str]:
    """Write ``weights.npz`` and ``router.json``; the version is the weights' content hash."""
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    stored = _stored(arrays)
    np.savez_compressed(buffer, **{n: stored[n] for n in sorted(stored)})  # type: ignore[arg-type]
    data = buffer.getvalue()
    version = hashlib.sha256(data).hexdigest()[:12]
    (out / WEIGHTS_FILE).write_bytes(data)
    meta = {**meta, "version": version}
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out, version


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def train_router(
    data: Sequence[Path],
    out: Path,
    split_seed: int = 0,
    use_embedding: bool = True,
    dim: int = DEFAULT_DIM,
    log: TextIO = sys.stderr,
    embed: Callable[[Sequence[str]], Array] = embed_all,
) -> LearnedRouter:
    """The whole command: split, embed, cross-validate, choose, fit, calibrate, write."""
    examples = [e for e in read_examples(data) if split_of(e.prompt, split_seed) == "train"]
    examples.sort(key=lambda e: (e.group, e.prompt, e.weak, e.strong))
    if len(examples) < 10 * FOLDS:
        raise ValueError(f"only {len(examples)} training rows after the test split")
    print(f"train split: {len(examples)} prompts", file=log, flush=True)
    embeddings = embed([e.prompt for e in examples]) if use_embedding else None
    ts = training_set(examples, embeddings, dim)
    parts = out_of_fold_parts(ts, dim, split_seed, log)
    weights, cv_apgr = choose_weights(parts, ts)
    oof = parts @ np.array(weights)
    weak = np.array([e.weak for e in examples])
    strong = np.array([e.strong for e in examples])
    alone = {
        name: round(evaluate_router(parts[:, i], weak, strong).apgr, 4)
        for i, name in enumerate(("prior", "words", "outcome", "neighbours"))
    }
    print(f"out-of-fold APGR of each part alone: {alone}", file=log, flush=True)
    cv = evaluate_router(oof, weak, strong)
    print(f"weights {weights}: out-of-fold {json.dumps(cv.summary())}", file=log, flush=True)
    per_source = {}
    for source in sorted({e.source for e in examples}):
        rows = np.array([e.source == source for e in examples])
        per_source[source] = evaluate_router(oof[rows], weak[rows], strong[rows]).summary()
        print(f"  out-of-fold on {source}: {json.dumps(per_source[source])}", file=log, flush=True)
    arrays = without_unused_parts(fit_arrays(ts, np.arange(len(examples)), dim), weights)
    arrays["quantiles"] = np.quantile(oof, np.linspace(0.0, 1.0, 1001))
    k = NEIGHBOURS_K if use_embedding else 0
    meta = model_meta(dim, k, weights)
    meta["groups"] = list(ts.groups)
    meta["training"] = {
        "data": [{"file": p.name, "sha256_16": file_digest(p)} for p in data],
        "rows": len(examples),
        "split": "blake2b-64(prompt, person=split_seed) mod 100 >= 20 (buckets 0..19 held out)",
        "split_seed": split_seed,
        "folds": FOLDS,
        "embedding": "all-MiniLM-L6-v2, onnx-int8 (cache.embedder)" if use_embedding else None,
        "cross_validated": {**cv.summary(), "apgr_100_bins": round(cv_apgr, 4)},
        "cross_validated_parts_apgr": alone,
        "cross_validated_per_file": per_source,
        "command": "tiergate train router "
        + " ".join(f"--data {p.as_posix()}" for p in data)
        + f" --out {out.as_posix()}"
        + (f" --split-seed {split_seed}" if split_seed else "")
        + ("" if use_embedding else " --no-embedding"),
    }
    _, version = write_artifact(out, arrays, meta)
    print(f"wrote {out} (version {version})", file=log, flush=True)
    return LearnedRouter.load(out)
