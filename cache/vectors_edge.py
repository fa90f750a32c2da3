"""``EdgeStore``: the semantic cache's vectors in Qdrant Edge (qdrant-edge-py), Qdrant's own
engine running in process on a directory: HNSW, payload indexes, the same engine as the server.

When to use: opt in with ``GATEWAY_QDRANT_URL=edge:<directory>``. Not the embedded default:
measured on this machine it searched far slower than ``InProcessIndex`` (docs/caching.md).

Policy (the ``VectorStore`` contract of cache.vectors, tests/unit/cache/test_vectors.py):
- The scope and the TTL are filters in the engine (keyword and float payload indexes), applied
  before ranking; entries beyond ``max_entries`` are evicted oldest first.
- Every call runs in one worker thread (the engine is synchronous): the event loop never waits.
- The HNSW index is built in the background (``optimize()`` in a thread of its own) once
  ``INDEX_EVERY`` entries were added since the last build; searches go on meanwhile, served by
  the segments as they are (plain segments are scanned). ``aclose`` waits for a running build.

The only module importing qdrant_edge.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cache.vectors import ID_NAMESPACE, Clock, Hit, Row, Vector

T = TypeVar("T")
INDEX_EVERY = 10_000  # entries added before the next background HNSW build
SWEEP_EVERY_S = 60.0


class EdgeStore:
    """Qdrant Edge on a directory (created on first use, loaded after a restart)."""

    def __init__(
        self,
        dim: int,
        path: Path,
        max_entries: int = 100_000,
        ttl_s: float = 86_400.0,
        clock: Clock = time.time,
    ) -> None:
        import qdrant_edge as q

        self._q = q
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")
        self._build: threading.Thread | None = None
        self._added = 0
        self._next_sweep = 0.0
        self._path = path
        self._dim = dim
        self._shard = self._open()

    def _open(self) -> Any:
        q = self._q
        if (self._path / "edge_config.json").exists() or any(self._path.glob("segments*")):
            return q.EdgeShard.load(str(self._path))
        self._path.mkdir(parents=True, exist_ok=True)
        config = q.EdgeConfig(
            vectors=q.EdgeVectorParams(size=self._dim, distance=q.Distance.Dot),
            hnsw_config=q.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
        )
        shard = q.EdgeShard.create(str(self._path), config)
        shard.update(q.UpdateOperation.create_field_index("_scope", q.PayloadSchemaType.Keyword))
        shard.update(q.UpdateOperation.create_field_index("_stored_at", q.PayloadSchemaType.Float))
        for label in ("tenant", "alias", "namespace"):
            shard.update(q.UpdateOperation.create_field_index(label, q.PayloadSchemaType.Keyword))
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
        if self._added >= INDEX_EVERY and (self._build is None or not self._build.is_alive()):
            self._added = 0
            self._build = threading.Thread(target=self._optimize, name="qdrant-edge-index")
            self._build.start()

    def _optimize(self) -> None:
        self._shard.optimize()

    def _count(self) -> int:
        count: int = self._shard.count(self._q.CountRequest(exact=True))
        return count

    async def search(self, vector: Vector, scope_filter: str, limit: int) -> list[Hit]:
        return await self._run(lambda: self._search(vector, scope_filter, limit))

    def _search(self, vector: Vector, scope: str, limit: int) -> list[Hit]:
        q = self._q
        live = q.RangeFloat(gte=self._clock() - self.ttl_s)
        where = q.Filter(
            must=[
                q.FieldCondition(key="_scope", match=q.MatchValue(scope)),
                q.FieldCondition(key="_stored_at", range=live),
            ]
        )
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest([float(x) for x in vector]),
            filter=where,
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

    async def aclose(self) -> None:
        def close() -> None:
            if self._build is not None:
                self._build.join()
            self._shard.flush()
            self._shard.close()

        await self._run(close)
        self._pool.shutdown(wait=False)


def _point_id(id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, id))
