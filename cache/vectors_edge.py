"""``EdgeStore``: the semantic cache's vectors in Qdrant Edge (qdrant-edge-py), Qdrant's own
engine running in process on a directory: HNSW, payload indexes, the same engine as the server.

When to use: opt in with ``GATEWAY_QDRANT_URL=edge:<directory>``. Not the embedded default:
measured at 100k entries on this machine it searched slower than ``InProcessIndex``, found the
exact nearest entry less often, and its index build stalls the whole process (below;
docs/caching.md, "Qdrant Edge").

Policy (the ``VectorStore`` contract of cache.vectors, tests/unit/cache/test_vectors.py):
- The scope is a filter in the engine: a keyword payload index marked as the tenant, and one
  HNSW graph per scope (no global graph: no search goes without a scope). A scope smaller
  than ``full_scan_threshold`` is scored exactly through the payload index.
- The TTL is not a per-search filter: a float range condition made every search several times
  slower (docs/caching.md, "Qdrant Edge"). Instead the store asks for the top ``limit`` and
  drops expired hits in Python; only when one was dropped (an entry expired since the last
  sweep) does it ask again with the range filter, so an expired entry is never returned.
  Expired entries are deleted by a sweep on upsert (at most every ``SWEEP_EVERY_S``, at once
  after a search met one). ``_stored_at`` keeps a range index (for the sweep and the
  oldest-first eviction beyond ``max_entries``) without HNSW links of its own.
- Payloads stay in RAM (``Memory.Cached``), not in Qdrant's default cold storage.
- Every call runs in one worker thread (the engine is synchronous), one call at a time.
- The HNSW index is built by ``optimize()`` in a thread of its own once ``index_every``
  entries were added since the last build, and at start when that many are not indexed; the
  segments serve as they are until it ends (the indexed ones through their graph, the new
  appendable one scanned). But qdrant-edge-py 0.9.0 holds the GIL for the whole
  ``optimize()``: every Python thread, the event loop included, waits for the build (minutes
  at 100k entries on 2 busy cores). ``aclose`` waits for a running build.
- A directory written for another vector size (another embedding model) is a stale cache: it
  is emptied, with a warning, like ``InProcessIndex`` ignores a snapshot of another model.

The only module importing qdrant_edge.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cache.vectors import ID_NAMESPACE, Clock, Hit, Row, Vector

log = logging.getLogger("tiergate.cache.vectors")
T = TypeVar("T")
INDEX_EVERY = 10_000  # entries added before the next background HNSW build
SWEEP_EVERY_S = 60.0
LABELS = ("tenant", "alias", "namespace")  # payload keys purges match on
CONFIG_FILE = "edge_config.json"


class EdgeStore:
    """Qdrant Edge on a directory (created on first use, loaded after a restart)."""

    def __init__(
        self,
        dim: int,
        path: Path,
        max_entries: int = 100_000,
        ttl_s: float = 86_400.0,
        clock: Clock = time.time,
        index_every: int = INDEX_EVERY,
    ) -> None:
        import qdrant_edge as q

        self._q = q
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._index_every = index_every
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")
        self._build: threading.Thread | None = None
        self._next_sweep = 0.0
        self._path = path
        self._dim = dim
        self._shard = self._open()
        info = self._shard.info()
        self._added = info.points_count - info.indexed_vectors_count
        self._maybe_build()

    def _open(self) -> Any:
        q = self._q
        config_file = self._path / CONFIG_FILE
        if config_file.exists():
            stored = _stored_dim(config_file)
            if stored is None or stored == self._dim:
                return q.EdgeShard.load(str(self._path))
            log.warning(
                "semantic cache %s: %d-d vectors, not %d; emptied", self._path, stored, self._dim
            )
            shutil.rmtree(self._path)
        self._path.mkdir(parents=True, exist_ok=True)
        config = q.EdgeConfig(
            vectors=q.EdgeVectorParams(size=self._dim, distance=q.Distance.Dot),
            # Every search names exactly one scope: one HNSW graph per scope (payload_m) and no
            # global graph (m=0) is what it needs, and half the build of both.
            hnsw_config=q.HnswIndexConfig(
                m=0, payload_m=16, ef_construct=100, full_scan_threshold=10_000
            ),
            payload_memory=q.Memory.Cached,
            max_search_threads=1,  # one call at a time already; a pool hop only adds jitter
        )
        shard = q.EdgeShard.create(str(self._path), config)
        index = q.UpdateOperation.create_field_index
        shard.update(index("_scope", q.KeywordIndexParams(is_tenant=True)))
        shard.update(index("_stored_at", q.FloatIndexParams(enable_hnsw=False)))
        for label in LABELS:
            shard.update(index(label, q.KeywordIndexParams(enable_hnsw=False)))
        return shard

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def upsert(self, id: str, vector: Vector, payload: Mapping[str, Any], scope: str) -> None:
        await self._run(functools.partial(self._upsert_rows, [(id, vector, payload, scope)]))

    async def upsert_many(self, rows: Sequence[Row]) -> None:
        for i in range(0, len(rows), 1000):
            await self._run(functools.partial(self._upsert_rows, rows[i : i + 1000]))

    def _upsert_rows(self, rows: Sequence[Row]) -> None:
        q, now = self._q, self._clock()
        points = [
            q.Point(
                _point_id(id),
                [float(x) for x in vector],
                {**payload, "_id": id, "_scope": scope, "_stored_at": now},
            )
            for id, vector, payload, scope in rows
        ]
        self._shard.update(q.UpdateOperation.upsert_points(points))
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            expired = q.FieldCondition(key="_stored_at", range=q.RangeFloat(lt=now - self.ttl_s))
            self._shard.update(q.UpdateOperation.delete_points_by_filter(q.Filter(must=[expired])))
        excess = self._count() - self.max_entries
        if excess > 0:
            order = q.OrderBy(key="_stored_at", direction=q.Direction.Asc)
            oldest, _ = self._shard.scroll(q.ScrollRequest(limit=excess, order_by=order))
            self._shard.update(q.UpdateOperation.delete_points([p.id for p in oldest]))
        self._added += len(rows)
        self._maybe_build()

    def _maybe_build(self) -> None:
        if self._added >= self._index_every:
            self.build_index()

    def build_index(self) -> None:
        """Start a background HNSW build now, unless one is running (benchmarks; the store
        starts its own every ``index_every`` entries)."""
        if self._build is None or not self._build.is_alive():
            self._added = 0
            self._build = threading.Thread(target=self._shard.optimize, name="qdrant-edge-index")
            self._build.start()

    def _count(self) -> int:
        count: int = self._shard.count(self._q.CountRequest(exact=True))
        return count

    async def search(self, vector: Vector, scope_filter: str, limit: int) -> list[Hit]:
        return await self._run(lambda: self._search(vector, scope_filter, limit))

    def _search(self, vector: Vector, scope: str, limit: int) -> list[Hit]:
        now = self._clock()
        query = [float(x) for x in vector]
        hits = self._query(query, scope, limit, None)
        live = [h for h in hits if h.stored_at >= now - self.ttl_s]
        if len(live) < len(hits):  # an entry expired since the last sweep: ask the engine
            self._next_sweep = min(self._next_sweep, now)
            live = self._query(query, scope, limit, now - self.ttl_s)
        return live

    def _query(self, query: list[float], scope: str, limit: int, since: float | None) -> list[Hit]:
        q = self._q
        conditions = [q.FieldCondition(key="_scope", match=q.MatchValue(scope))]
        if since is not None:
            conditions.append(q.FieldCondition(key="_stored_at", range=q.RangeFloat(gte=since)))
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(query),
            filter=q.Filter(must=conditions),
            with_payload=True,
        )
        hits = []
        for point in self._shard.query(request):
            payload = dict(point.payload or {})
            id, at = str(payload.pop("_id")), float(payload.pop("_stored_at"))
            payload.pop("_scope", None)
            hits.append(Hit(id, float(point.score), payload, at))
        return hits

    async def delete(self, ids: Sequence[str] = (), match: Mapping[str, str] | None = None) -> int:
        return await self._run(lambda: self._delete(ids, match))

    def _delete(self, ids: Sequence[str], match: Mapping[str, str] | None) -> int:
        q = self._q
        before = self._count()
        if ids:
            self._shard.update(q.UpdateOperation.delete_points([_point_id(i) for i in ids]))
        if match:
            conditions = [q.FieldCondition(key=k, match=q.MatchValue(v)) for k, v in match.items()]
            self._shard.update(q.UpdateOperation.delete_points_by_filter(q.Filter(must=conditions)))
        return before - self._count()

    async def count(self) -> int:
        return await self._run(self._count)

    async def clear(self) -> int:
        return await self._run(self._clear)

    def _clear(self) -> int:
        q = self._q
        n = self._count()
        everything = q.Filter(must=[q.FieldCondition(key="_stored_at", range=q.RangeFloat(gte=0))])
        self._shard.update(q.UpdateOperation.delete_points_by_filter(everything))
        return n

    def wait_for_index(self) -> None:
        """Block until a running background build has finished (benchmarks, shutdown)."""
        if self._build is not None:
            self._build.join()

    async def aclose(self) -> None:
        def close() -> None:
            self.wait_for_index()
            self._shard.flush()
            self._shard.close()

        await self._run(close)
        self._pool.shutdown(wait=False)


def _stored_dim(config_file: Path) -> int | None:
    try:
        size = json.loads(config_file.read_text())["vectors"][""]["size"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(size)


def _point_id(id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, id))
