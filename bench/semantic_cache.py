"""Benchmark: semantic-cache lookup latency (embed + search + verifier) with 100k entries.

The learned hit verifier decides on the candidates, as in the gateway: the cross-encoder
(cache/artifacts/cross_encoder.onnx) weighed with the gradient-boosted trees
(cache/artifacts/verifier.json), the default, and, measured in the same run for comparison,
the trees alone (``cross_encoder: false``).
The store holds ``--entries`` vectors in ONE scope (the worst case: a search scans a scope, and real
traffic spreads over many): the ``a`` side of every pair in
data/cache_eval/traps.jsonl, embedded by the real model, plus random unit vectors. Each
lookup is the ``b`` side of a pair, through ``SemanticLibrary.lookup`` (the code the stage
runs), with the embedder's LRU off so every lookup runs the model. Printed: p50/p99 of the
whole lookup, and of each part alone, for the embedded default (InProcessIndex) and, for
comparison, Qdrant local mode; and 32 lookups at once: lookups per second and the event
loop's lag meanwhile (what every other request on the loop waits). Results are printed, not
asserted.

``--pairs traps`` (the default) is the worst case for the verifier: almost every lookup's
nearest entry is a near-duplicate, so almost every lookup runs it in full. ``--pairs quora``
plants and asks the balanced Quora test pairs (``gateway.eval.devsets``; half of them are not
duplicates), closer to traffic where many nearest entries are merely related.

    .venv/bin/python -m bench.semantic_cache [--entries 100000] [--qdrant-entries 100000]
        [--pairs traps|quora]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cache.cross_encoder import load_cross_encoder
from cache.embedder import ModelEmbedder, load_embedder
from cache.guards import features, first_difference
from cache.policy import SemanticCachePolicy
from cache.semantic import Key, Request, SemanticLibrary
from cache.spelling import corrected, correction
from cache.vectors import InProcessIndex, QdrantStore, VectorStore
from cache.verifier import load_verifier

PAIRS = Path(__file__).resolve().parents[1] / "data" / "cache_eval" / "traps.jsonl"


def lookup_pairs(name: str) -> list[dict[str, object]]:
    """The (planted ``a``, asked ``b``) pairs of the run."""
    if name == "traps":
        # The file is sorted by category (its first 300 lines are all traps, refused by the edit
        # check before any model runs): asked in a fixed shuffled order, the lookups mix
        # repeats, rewordings and traps as the file does.
        rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
        random.Random(7).shuffle(rows)
        return rows
    from gateway.eval.devsets import quora

    rows = list(quora("test"))
    dups, others = [r for r in rows if r["same"]], [r for r in rows if not r["same"]]
    return [r for pair in zip(dups, others, strict=False) for r in pair]  # alternate


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1e3:6.2f} ms   p99 {p99 * 1e3:6.2f} ms"


async def timed(fn: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


async def at_once(
    fn: Callable[[], Awaitable[object]], rounds: int, width: int
) -> tuple[float, float, float]:
    """``rounds`` calls, ``width`` at a time: calls per second, and the event loop's lag (p50,
    p99 ms) seen by a 1 ms ticker meanwhile (work done on the loop delays every request)."""
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - start) * 1000 - 1.0)

    tick = asyncio.create_task(ticker())
    gate = asyncio.Semaphore(width)

    async def one() -> None:
        async with gate:
            await fn()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(rounds)))
    elapsed = time.perf_counter() - start
    running = False
    await tick
    lags = lags or [0.0]  # the loop never yielded to the ticker: no lag was seen
    return rounds / elapsed, float(np.percentile(lags, 50)), float(np.percentile(lags, 99))


def request(text: str, greeted: bool = False) -> Request:
    """One question; ``greeted``: after "Good morning!" and the assistant's greeting, so the
    lookup searches its own time's scope and the plain one (cache.semantic.Key.fallback_scope)."""
    opening = [
        {"role": "user", "content": "Good morning!"},
        {"role": "assistant", "content": "Good morning! How can I help?"},
    ]
    messages = [*(opening if greeted else []), {"role": "user", "content": text}]
    return Request("bench", "bench", "v1", messages, {"temperature": 0})


async def fill(
    store: VectorStore, library: SemanticLibrary, keys: list[Key], entries: int, dim: int
) -> None:
    vectors = await library.embedder.embed([k.embedded[0] for k in keys])
    scope = keys[0].scope
    rows = [
        (f"p{i}", v, {**k.labels, "text": k.text, "body": "{}"}, scope)
        for i, (k, v) in enumerate(zip(keys, vectors, strict=True))
    ]
    rng = np.random.default_rng(7)
    chunk = 10_000
    for start in range(0, entries - len(rows), chunk):
        n = min(chunk, entries - len(rows) - start)
        filler = rng.standard_normal((n, dim)).astype(np.float32)
        filler /= np.linalg.norm(filler, axis=1, keepdims=True)
        await store.upsert_many(
            [
                (f"f{start + i}", v, {"text": "filler", "body": "{}"}, scope)
                for i, v in enumerate(filler)
            ]
        )
    await store.upsert_many(rows)


def key_timings(
    library: SemanticLibrary, policy: SemanticCachePolicy, talk: list[dict[str, str]], rounds: int
) -> list[float]:
    """How long building the key of the conversation ``talk`` takes, ``rounds`` times."""
    conversation = Request("bench", "bench", "v1", talk, {"temperature": 0})
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        library.key(conversation, policy)
        samples.append(time.perf_counter() - start)
    return samples


async def measure(
    name: str,
    store: VectorStore,
    embedder: ModelEmbedder,
    args: argparse.Namespace,
    entries: int,
    queries: int,
) -> None:
    policy = SemanticCachePolicy(enabled=True)  # the default: cross-encoder + trees
    verifier = load_verifier()
    ce = load_cross_encoder()
    library = SemanticLibrary(embedder, store, verifier=verifier, cross_encoder=ce)
    pairs = lookup_pairs(args.pairs)
    planted = [library.key(request(str(p["a"])), policy) for p in pairs]
    asked = [library.key(request(str(p["b"])), policy) for p in pairs]
    keys_a = [k for k in planted if isinstance(k, Key)]
    keys_b = [k for k in asked if isinstance(k, Key)][:queries]
    started = time.perf_counter()
    await fill(store, library, keys_a, entries, embedder.dim)
    filled_s = time.perf_counter() - started
    print(f"\n{name}: {await store.count()} entries in one scope (filled in {filled_s:.1f} s)")
    await library.lookup(keys_b[0], policy)  # warm-up
    it = iter(range(10**9))
    hits = 0

    async def lookup(using: SemanticCachePolicy, greeted: bool = False) -> None:
        nonlocal hits
        key = keys_b[next(it) % len(keys_b)]
        # key building (features) is part of it
        fresh = library.key(request(key.text, greeted), using)
        assert isinstance(fresh, Key)
        hits += (await library.lookup(fresh, using)).hit is not None

    print(f"  load average {os.getloadavg()[0]:.2f} (1 min) before the lookups")
    trees = policy.model_copy(update={"cross_encoder": False})
    for label, using in (("trees only", trees), ("default, + CE", policy)):
        if label != "trees only" and ce is None:
            print("  cross-encoder: artifact or onnxruntime missing, skipped")
            continue
        hits = 0
        total = await timed(lambda using=using: lookup(using), len(keys_b))  # type: ignore[misc]
        print(f"  lookup ({label:<13})            {ms(total)}   ({hits}/{len(keys_b)} served)")
    if ce is not None:  # a greeting that tells the time: two scopes searched
        hits = 0
        total = await timed(lambda: lookup(policy, greeted=True), len(keys_b))
        print(f"  lookup after 'Good morning!'      {ms(total)}   ({hits}/{len(keys_b)} served)")
    if ce is not None:
        rate, lag50, lag99 = await at_once(lambda: lookup(policy), len(keys_b), 32)
        print(
            f"  32 lookups at once (default)      {rate:.0f} lookups/s; event-loop lag "
            f"p50 {lag50:.2f} ms, p99 {lag99:.2f} ms"
        )
    vector = (await embedder.embed([keys_b[0].text]))[0]
    texts = iter([k.text for k in keys_b] * 2)
    embeds = await timed(lambda: embedder.embed([next(texts)]), len(keys_b))
    print(f"  embed only                        {ms(embeds)}")
    scope = keys_b[0].scope
    searches = await timed(lambda: store.search(vector, scope, policy.candidates), len(keys_b))
    print(f"  search only                       {ms(searches)}")
    guard_times = []
    for k, a in zip(keys_b, keys_a, strict=False):
        start = time.perf_counter()
        first_difference(k.text, a.text)
        guard_times.append(time.perf_counter() - start)
    print(f"  guards only (one candidate)       {ms(guard_times)}")
    correction.cache_clear()  # each word's first sight: its one-edit neighbours are looked up
    spell_times = []
    for k in keys_b:
        start = time.perf_counter()
        corrected(k.text)
        spell_times.append(time.perf_counter() - start)
    print(f"  spelling only (words first seen)  {ms(spell_times)}")
    talk: list[dict[str, str]] = []
    for i in range(10):  # a 21-message conversation: the key digests every earlier turn
        talk.append({"role": "user", "content": f"Question {i} about the account settings?"})
        talk.append({"role": "assistant", "content": "Here is a fairly long answer. " * 20})
    talk.append({"role": "user", "content": "And what about the monthly fee?"})
    key_times = key_timings(library, policy, talk, len(keys_b))
    print(f"  key of a 21-message conversation  {ms(key_times)}")
    for message in talk:  # each user turn opens with a thanks: without_leads tries each lead
        if message["role"] == "user":
            message["content"] = "Thanks, got it! " + message["content"]
    lead_times = key_timings(library, policy, talk, len(keys_b))
    print(f"  ... every user turn with a lead   {ms(lead_times)}")
    verify_times = []
    for k, a in zip(keys_b, keys_a, strict=False):
        start = time.perf_counter()
        verifier.probability(features(k.text), features(a.text), 0.9)
        verify_times.append(time.perf_counter() - start)
    print(f"  trees only (one candidate)        {ms(verify_times)}")
    if ce is not None:
        ce_times = []
        for k, a in zip(keys_b, keys_a, strict=False):
            start = time.perf_counter()
            ce.score_pairs([(a.text, k.text)])
            ce_times.append(time.perf_counter() - start)
        print(f"  cross-encoder only (one pair)     {ms(ce_times)}")
    print(f"  load average {os.getloadavg()[0]:.2f} (1 min) after")


async def main(args: argparse.Namespace) -> None:
    embedder = load_embedder(
        backend=args.backend, threads=args.threads, lru_size=0, cache_dir=Path(args.models)
    )
    print(f"embedder: {args.backend}, {args.threads} threads; lookups: {args.queries}")
    index = InProcessIndex(embedder.dim, max_entries=args.entries)
    await measure(
        "embedded default (InProcessIndex)", index, embedder, args, args.entries, args.queries
    )
    if args.qdrant_entries:
        qdrant = QdrantStore(embedder.dim, ":memory:", max_entries=args.qdrant_entries)
        await measure(
            "Qdrant local mode (:memory:)", qdrant, embedder, args, args.qdrant_entries, 30
        )
        await qdrant.aclose()
    await embedder.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--qdrant-entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--backend", choices=["onnx-int8", "onnx", "torch"], default="onnx-int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="var/models", help="ONNX export cache")
    parser.add_argument("--pairs", choices=["traps", "quora"], default="traps")
    asyncio.run(main(parser.parse_args()))
