"""Benchmark: the two embedded vector stores side by side, through the ``VectorStore`` interface
the semantic cache calls: ``EdgeStore`` (Qdrant Edge, Qdrant's engine in process) and
``InProcessIndex`` (numpy), the same random 384-d unit vectors, the same noisy queries.

For each store: load time, search p50/p99 (top 4 of the query's scope, payloads returned, one
``await store.search`` per query, so the worker-thread hop is included), recall@1 against the
exact nearest neighbour of the scope (numpy), and the process RSS growth. For ``EdgeStore``
also: search before its HNSW index is built (segments scanned), the build time (in a
thread), how long
the event loop stood still meanwhile (qdrant-edge-py holds the GIL in ``optimize()``), search
after it, and after ``--extra`` more entries that wait for the next build in the appendable
segment (the steady state between two builds). The load average is printed with every line:
the machine is shared.

    .venv/bin/python -m bench.qdrant_edge [--entries 100000] [--scopes 1] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from cache.vectors import InProcessIndex, Row, VectorStore
from cache.vectors_edge import EdgeStore

DIM = 384


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class Workload:
    def __init__(self, entries: int, stored: int, scopes: int, queries: int, seed: int = 1) -> None:
        """``entries`` vectors; the queries are drawn around the first ``stored``."""
        rng = np.random.default_rng(seed)
        self.vectors = unit_rows(rng, entries)
        self.scopes = scopes
        # Half the queries are near paraphrases of a stored entry (cosine ~0.9 to it), half far
        # ones (~0.7, the cache's candidate floor): random 384-d data is HNSW's hardest case.
        targets = (np.arange(queries) * 7919) % stored
        sigma = np.where(np.arange(queries) % 2 == 0, 0.025, 0.05).astype(np.float32)[:, None]
        noise = sigma * rng.standard_normal((queries, DIM)).astype(np.float32)
        noisy = self.vectors[targets] + noise
        self.queries = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        self.query_scopes = [self.scope(int(t)) for t in targets]
        self.cosine = (self.queries * self.vectors[targets]).sum(axis=1)

    def scope(self, i: int) -> str:
        return f"scope{i % self.scopes}"

    def rows(self, start: int, stop: int) -> list[Row]:
        return [
            (f"e{i}", self.vectors[i], {"text": "x" * 200}, self.scope(i))
            for i in range(start, stop)
        ]

    def exact(self, stored: int) -> list[str]:
        """The id of each query's exact nearest neighbour among the first ``stored`` entries."""
        scores = self.queries @ self.vectors[:stored].T
        best = []
        for i, scope in enumerate(self.query_scopes):
            first = int(scope[5:])
            best.append(f"e{first + self.scopes * int(np.argmax(scores[i, first :: self.scopes]))}")
        return best


async def measure(label: str, store: VectorStore, work: Workload, wanted: list[str]) -> None:
    samples, found = [], []
    for query, scope, want in zip(work.queries, work.query_scopes, wanted, strict=True):
        start = time.perf_counter()
        hits = await store.search(query, scope, 4)
        samples.append(time.perf_counter() - start)
        found.append(bool(hits) and hits[0].id == want)
    ordered = sorted(samples)
    p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    near, far = np.mean(found[0::2]), np.mean(found[1::2])
    print(
        f"  {label:<42} p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms  "
        f"recall@1 near {near:.3f} far {far:.3f}  {load()}",
        flush=True,
    )


async def build_stall(edge: EdgeStore) -> float:
    """Start a build and wait for it; the longest the event loop could not run meanwhile (s)."""
    start = time.perf_counter()
    edge.build_index()  # returns once the new thread has started (it needs the GIL for that)
    loop = asyncio.get_running_loop()
    done = loop.run_in_executor(None, edge.wait_for_index)
    longest, last = time.perf_counter() - start, time.perf_counter()
    while not done.done():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    await done
    return longest


async def bulk(store: VectorStore, work: Workload, start: int, stop: int) -> float:
    began = time.perf_counter()
    for i in range(start, stop, 2000):
        await store.upsert_many(work.rows(i, min(i + 2000, stop)))
    return time.perf_counter() - began


async def main(args: argparse.Namespace) -> None:
    n = args.entries
    work = Workload(n + args.extra, n, args.scopes, args.queries)
    print(
        f"{n} random {DIM}-d unit vectors, {args.scopes} scope(s), {args.queries} queries, {load()}"
    )
    near, far = work.cosine[0::2], work.cosine[1::2]
    print(f"query cosine to its source: near {near.mean():.2f}, far {far.mean():.2f} (means)")
    wanted, wanted_extra = work.exact(n), work.exact(n + args.extra)
    folder = Path(tempfile.mkdtemp(prefix="qdrant-edge-", dir=args.dir))
    cap = n + args.extra

    base = rss_mb()
    numpy_index = InProcessIndex(DIM, max_entries=cap)
    took = await bulk(numpy_index, work, 0, n)
    print(f"InProcessIndex: loaded in {took:.1f} s, RSS +{rss_mb() - base:.0f} MB", flush=True)
    await measure("InProcessIndex", numpy_index, work, wanted)
    await numpy_index.aclose()
    del numpy_index

    base = rss_mb()
    edge = EdgeStore(DIM, folder, max_entries=cap, index_every=2 * cap)  # builds started here
    took = await bulk(edge, work, 0, n)
    print(f"EdgeStore: loaded in {took:.1f} s; the HNSW build starts in a thread", flush=True)
    await measure("EdgeStore, before the build (scanned)", edge, work, wanted)
    began = time.perf_counter()
    stall = await build_stall(edge)
    built = time.perf_counter() - began
    print(f"  HNSW build (optimize) took {built:.1f} s, RSS +{rss_mb() - base:.0f} MB")
    print(f"  the event loop stood still for up to {stall:.1f} s meanwhile (the GIL is held)")
    await measure("EdgeStore, indexed", edge, work, wanted)
    if args.extra:
        await bulk(edge, work, n, n + args.extra)
        await measure(
            f"EdgeStore, indexed + {args.extra} not yet indexed", edge, work, wanted_extra
        )
        began = time.perf_counter()
        stall = await build_stall(edge)
        took = time.perf_counter() - began
        print(f"  the next build ({args.extra} new entries) took {took:.1f} s, stall {stall:.1f} s")
        await measure("EdgeStore, after it", edge, work, wanted_extra)
    size = disk_mb(folder)
    print(f"  on disk {size:.0f} MB, RSS +{rss_mb() - base:.0f} MB, {load()}")
    await edge.aclose()
    shutil.rmtree(folder)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--scopes", type=int, default=1, help="1: every entry in one scope")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--extra", type=int, default=10_000, help="entries added after the build")
    parser.add_argument("--dir", default="var", help="where the shard is written (then removed)")
    arguments = parser.parse_args()
    Path(arguments.dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(arguments))
