"""Whether a text's embedding, and a pair's cross-encoder score, depend on what else is in
the batch; and what embedding costs under concurrent load.

Usage: ``python -m bench.embedder_batches [--texts 256] [--batch 16]``

The int8 models quantise their activations dynamically, with one scale per tensor: a batch's
longest or most extreme text, and the padding up to it, set the scale every other text in the
batch is rounded with. This prints, for questions from ``data/cache_eval/``:

- ``self cosine``: each text embedded alone against the same text embedded in a batch of
  ``--batch`` others (1.0 when batches do not matter);
- ``pair cosine moved``: how far the cosine of a hand-written pair (traps.jsonl) moves when
  each side is embedded in a batch rather than alone;
- ``ce moved``: how far the cross-encoder's probability for a pair moves when it is scored
  together with ``--batch`` - 1 others, and how many decisions cross the shipped cut;
- ``throughput``: texts per second through ``ModelEmbedder`` with 32 requests at once, each
  with its own text (no LRU hits), and one request at a time.

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path

import numpy as np

from cache.cross_encoder import load_cross_encoder
from cache.embedder import ModelEmbedder, load_embedder

PAIRS = Path("data/cache_eval/traps.jsonl")


def _pairs() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in PAIRS.open()]
    return [(r["a"], r["b"]) for r in rows if isinstance(r["a"], str)]


def _batched(encode: object, texts: list[str], size: int, rng: random.Random) -> np.ndarray:
    """Each text embedded inside a random batch of ``size`` texts, in its own row."""
    out = []
    for t in texts:
        others = rng.sample([u for u in texts if u != t], size - 1)
        batch = [*others[: size // 2], t, *others[size // 2 :]]
        out.append(encode(batch)[size // 2])  # type: ignore[operator]
    return np.stack(out)


async def _throughput(embedder: ModelEmbedder, texts: list[str], concurrency: int) -> float:
    queue = list(texts)
    start = time.perf_counter()

    async def worker() -> None:
        while queue:
            await embedder.embed([queue.pop()])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(13)
    pairs = _pairs()[: args.texts // 2]
    texts = list(dict.fromkeys(t for p in pairs for t in p))
    if not 2 <= args.batch <= min(len(texts), len(pairs)):
        parser.error(f"--batch: 2 to {min(len(texts), len(pairs))} for --texts {args.texts}")
    embedder = load_embedder()
    encode = embedder._encoder.encode  # the model itself, past the LRU

    alone = np.stack([encode([t])[0] for t in texts])
    batched = _batched(encode, texts, args.batch, rng)
    self_cos = np.sum(alone * batched, axis=1)
    index = {t: i for i, t in enumerate(texts)}
    moved = np.array(
        [
            abs(
                float(alone[index[a]] @ alone[index[b]])
                - float(batched[index[a]] @ batched[index[b]])
            )
            for a, b in pairs
        ]
    )

    ce = load_cross_encoder()
    ce_moved = np.zeros(0)
    crossed = 0
    if ce is not None:
        single = np.array([ce.score_pairs([p])[0] for p in pairs])
        grouped = []
        for p in pairs:
            others = rng.sample([q for q in pairs if q != p], args.batch - 1)
            grouped.append(ce.score_pairs([p, *others])[0])
        ce_moved = np.abs(single - np.array(grouped))
        crossed = int(np.sum((single >= ce.threshold) != (np.array(grouped) >= ce.threshold)))

    fresh = [f"{t} ({k})" for k in range(4) for t in texts]  # unseen by the LRU
    loaded = asyncio.run(_throughput(embedder, fresh[: len(fresh) // 2], 32))
    serial = asyncio.run(_throughput(embedder, fresh[len(fresh) // 2 :], 1))

    result = {
        "texts": len(texts),
        "batch": args.batch,
        "self_cosine_min": round(float(self_cos.min()), 5),
        "self_cosine_mean": round(float(self_cos.mean()), 5),
        "pair_cosine_moved_mean": round(float(moved.mean()), 5),
        "pair_cosine_moved_max": round(float(moved.max()), 5),
        "ce_moved_mean": round(float(ce_moved.mean()), 5) if ce_moved.size else None,
        "ce_moved_max": round(float(ce_moved.max()), 5) if ce_moved.size else None,
        "ce_decisions_crossing_cut": crossed,
        "ce_pairs": len(pairs),
        "texts_per_s_32_at_once": round(loaded, 1),
        "texts_per_s_one_at_a_time": round(serial, 1),
    }
    print(f"self cosine, alone vs in a batch of {args.batch}: ", end="")
    print(f"min {result['self_cosine_min']}, mean {result['self_cosine_mean']}")
    print(
        f"pair cosine moved: mean {result['pair_cosine_moved_mean']}, "
        f"max {result['pair_cosine_moved_max']}"
    )
    print(
        f"cross-encoder probability moved: mean {result['ce_moved_mean']}, "
        f"max {result['ce_moved_max']}; {crossed} of {len(pairs)} decisions cross the cut"
    )
    print(
        f"throughput: {result['texts_per_s_32_at_once']} texts/s with 32 at once, "
        f"{result['texts_per_s_one_at_a_time']} one at a time"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
