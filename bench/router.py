"""Benchmark: the learned router's decision cost, artifact size and load time.

Prompts are MMLU prompts from the router's held-out test split (realistic lengths, 1,300+ of
them; ``data/router/mt_bench.jsonl`` when the shared data is absent). Printed:
- load: ``LearnedRouter.load`` of the artifact (median of 5) and the artifact's size on disk;
- ``score()`` alone, without the embedding (``embedding=None``: the word-based part only);
- ``score()`` alone, with a precomputed embedding (every part of the model);
- the whole decision as the gateway pays it when the semantic cache has not embedded the prompt
  already: one single-prompt embedding (ONNX int8 MiniLM, LRU off, one text per call, no batch
  partner) plus ``score()``.
p50 and p99 per call; results are printed, not asserted. Other processes on this machine
share its 2 cores: figures move with their load.

    .venv/bin/python -m bench.router [--artifact DIR] [--calls 300] [--prompts FILE.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cache.embedder import load_embedder
from gateway.routing.learned import LearnedRouter
from gateway.routing.split import split_of

ROOT = Path(__file__).resolve().parents[1]
MMLU = ROOT.parent / "shared" / "data" / "routellm-evals" / "mmlu.jsonl"
FALLBACK = ROOT / "data" / "router" / "mt_bench.jsonl"


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms"


def prompts(path: str | None) -> list[str]:
    source = Path(path) if path else MMLU if MMLU.exists() else FALLBACK
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    if path:  # a file of the user's: every prompt
        return [r["prompt"] for r in rows]
    return [r["prompt"] for r in rows if split_of(r["prompt"]) == "test"] or [
        r["prompt"] for r in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifact", default=str(ROOT / "routing_rules/artifacts/router"))
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--prompts", help="JSONL with a prompt field (default: MMLU test split)")
    args = parser.parse_args()
    artifact = Path(args.artifact)
    texts = prompts(args.prompts)
    size = sum(p.stat().st_size for p in artifact.iterdir() if p.is_file())
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        router = LearnedRouter.load(artifact)
        loads.append(time.perf_counter() - start)
    print(f"artifact {artifact.name}: version {router.version}, {size / 1e6:.2f} MB on disk")
    print(f"load:                           median {statistics.median(loads) * 1e3:.1f} ms")
    chars = [len(t) for t in texts]
    print(f"prompts: {len(texts)} (median {int(np.median(chars))} chars, max {max(chars)})")

    def score_calls(embeddings: list[np.ndarray] | None) -> list[float]:
        out = []
        n = len(texts) if embeddings is None else len(embeddings)
        for i in range(max(args.calls * 5, n)):
            text = texts[i % n]
            emb = None if embeddings is None else embeddings[i % n]
            start = time.perf_counter()
            router.score(text, emb)
            out.append(time.perf_counter() - start)
        return out

    print(f"score(), no embedding:          {ms(score_calls(None))}")
    embedder = load_embedder(lru_size=0)
    calls = texts[: args.calls]

    async def embed_each() -> tuple[list[np.ndarray], list[float]]:
        await embedder.embed(["warm up"])
        vectors, timings = [], []
        for text in calls:
            start = time.perf_counter()
            vector = (await embedder.embed([text]))[0]
            router.score(text, vector)
            timings.append(time.perf_counter() - start)
            vectors.append(vector)
        return vectors, timings

    vectors, whole = asyncio.run(embed_each())
    print(f"score(), given the embedding:   {ms(score_calls(vectors))}")
    print(f"embed one prompt + score():     {ms(whole)}")


if __name__ == "__main__":
    main()
