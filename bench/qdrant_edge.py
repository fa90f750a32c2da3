"""Benchmark: Qdrant Edge (qdrant-edge-py, Qdrant's engine in process) as the semantic cache's
embedded store, measured the way the cache would use it: one keyword-indexed ``scope`` payload
field as a filter, top 4, payload returned; before and during the HNSW build (``optimize()``
in a background thread, searches served meanwhile) and after it.

Not a dependency of the gateway (docs/caching.md says why the numpy index stays the default);
install it to run this: ``.venv/bin/pip install qdrant-edge-py==0.9.0``.

    .venv/bin/python -m bench.qdrant_edge [--entries 20000] [--queries 200]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import qdrant_edge as q


def report(label: str, samples: list[float], found: int) -> None:
    ordered = sorted(samples)
    p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    recall = found / len(samples)
    print(f"{label:<26} p50 {p50 * 1e3:8.2f} ms   p99 {p99 * 1e3:8.2f} ms   recall@1 {recall:.2f}")


def main(args: argparse.Namespace) -> None:
    folder = tempfile.mkdtemp(prefix="qdrant-edge-", dir=args.dir)
    config = q.EdgeConfig(
        vectors=q.EdgeVectorParams(size=384, distance=q.Distance.Dot),
        hnsw_config=q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
        optimizers=q.EdgeOptimizersConfig(default_segment_number=1),
    )
    shard = q.EdgeShard.create(folder, config)
    shard.update(q.UpdateOperation.create_field_index("scope", q.PayloadSchemaType.Keyword))
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((args.entries, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    for i in range(0, args.entries, 2000):
        points = [
            q.Point(j, vectors[j].tolist(), {"scope": "s1", "text": "x"})
            for j in range(i, min(i + 2000, args.entries))
        ]
        shard.update(q.UpdateOperation.upsert_points(points))
    print(f"{args.entries} entries upserted in {time.perf_counter() - started:.1f} s")
    scope = q.Filter(must=[q.FieldCondition(key="scope", match=q.MatchValue("s1"))])

    def measure(label: str) -> None:
        samples, found = [], 0
        for k in range(args.queries):
            target = (k * 7919) % args.entries
            v = vectors[target] + 0.05 * rng.standard_normal(384).astype(np.float32)
            v /= np.linalg.norm(v)
            request = q.QueryRequest(
                limit=4, query=q.Query.Nearest(v.tolist()), filter=scope, with_payload=True
            )
            start = time.perf_counter()
            hits = shard.query(request)
            samples.append(time.perf_counter() - start)
            found += bool(hits) and hits[0].id == target
        report(label, samples, found)

    measure("before the index")
    build = threading.Thread(target=shard.optimize)
    started = time.perf_counter()
    build.start()
    measure("while the index builds")
    build.join()
    print(f"HNSW build (optimize) took {time.perf_counter() - started:.1f} s")
    measure("after the index")
    shard.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dir", default=str(Path("var")), help="where the shard is written")
    main(parser.parse_args())
