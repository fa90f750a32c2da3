"""Vector stores for the semantic cache: one interface, two implementations, one contract.

When to use which:
- ``InProcessIndex`` (the embedded default): numpy, one matrix per scope, bounded size, snapshot
  to one file on close; under a millisecond at 100k vectors, where Qdrant's local mode (brute
  force in Python, payload filters per point) takes seconds.
- ``QdrantStore``: a Qdrant server URL (several replicas share one cache), or local mode
  (``:memory:`` or a path) for small single-node use and comparison.

Policy, the same for both (``tests/unit/cache/test_vectors.py`` is the contract):
- A search only ever sees its own scope: the filter is applied in the store, before ranking.
- Entries older than ``ttl_s`` are never returned, and are dropped.
- At most ``max_entries`` entries; inserting beyond that evicts the oldest first.
- Scores are cosine similarities of L2-normalised vectors.

Large scopes: above ``EXACT_ROWS`` rows an exact matrix-vector product over every row costs
more than the latency budget (6.8 ms at 100k x 384 here), so rows also keep the sign bits of
their first 192 dimensions (24 bytes) and a search ranks by Hamming distance first, then scores
the best ``PREFILTER_ROWS`` exactly. Entries similar enough to be served (cosine >= 0.8) lie far
inside that candidate set (recall measured in docs/caching.md); the score is always exact.

The only module importing qdrant_client (when a QdrantStore is built).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

log = logging.getLogger("tiergate.cache.vectors")
Vector = npt.NDArray[np.float32]
Clock = Callable[[], float]
T = TypeVar("T")
Row = tuple[str, Vector, Mapping[str, Any], str]  # id, vector, payload, scope
EXACT_ROWS = 8192  # scopes up to this size are scanned exactly
PREFILTER_ROWS = 512  # candidates kept by the Hamming prefilter, then scored exactly
PREFILTER_WORDS = 3  # sign bits of the first 192 dimensions (24 bytes a row)


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float  # cosine similarity
    payload: Mapping[str, Any]
    stored_at: float  # epoch seconds


class VectorStore(Protocol):
    async def upsert(
        self, id: str, vector: Vector, payload: Mapping[str, Any], scope: str
    ) -> None: ...

    async def upsert_many(self, rows: Sequence[Row]) -> None:
        """Bulk load: the same as one upsert per row, in order."""
        ...

    async def search(self, vector: Vector, scope_filter: str, limit: int) -> list[Hit]:
        """The ``limit`` most similar live entries of one scope, best first."""
        ...

    async def delete(self, ids: Sequence[str] = (), match: Mapping[str, str] | None = None) -> int:
        """Delete by id, or every entry whose payload has all of ``match``'s values."""
        ...

    async def count(self) -> int: ...

    async def clear(self) -> int: ...  # drop every entry; how many there were

    async def aclose(self) -> None: ...


# --- in-process index ----------------------------------------------------------------------


class _Shelf:
    """One scope's rows: vectors, their sign bits (one contiguous array per 64-bit word, so the
    Hamming prefilter streams memory), ids, payloads and insert times. Deleting swaps the last
    row into the hole."""

    def __init__(self, dim: int) -> None:
        self.words = min(PREFILTER_WORDS, (dim + 63) // 64)
        self.n = 0
        self.vectors = np.empty((16, dim), dtype=np.float32)
        self.bits = np.zeros((self.words, 16), dtype=np.uint64)
        self.ids: list[str] = []
        self.payloads: list[Mapping[str, Any]] = []
        self.stored_at: list[float] = []

    def add(self, id: str, vector: Vector, payload: Mapping[str, Any], at: float) -> int:
        if self.n == len(self.vectors):
            self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
            self.bits = np.concatenate([self.bits, np.zeros_like(self.bits)], axis=1)
        row = self.n
        self.vectors[row] = vector
        self.bits[:, row] = sign_bits(vector, self.words)
        self.ids.append(id)
        self.payloads.append(payload)
        self.stored_at.append(at)
        self.n += 1
        return row

    def remove(self, row: int) -> str | None:
        """Remove ``row``; return the id of the row moved into its place, if any."""
        last = self.n - 1
        moved = None
        if row != last:
            self.vectors[row] = self.vectors[last]
            self.bits[:, row] = self.bits[:, last]
            self.ids[row] = self.ids[last]
            self.payloads[row] = self.payloads[last]
            self.stored_at[row] = self.stored_at[last]
            moved = self.ids[row]
        self.ids.pop()
        self.payloads.pop()
        self.stored_at.pop()
        self.n = last
        return moved

    def candidates(self, vector: Vector) -> npt.NDArray[np.intp]:
        if self.n <= EXACT_ROWS:
            return np.arange(self.n)
        query = sign_bits(vector, self.words)
        distance = np.zeros(self.n, dtype=np.uint16)
        for w in range(self.words):
            distance += np.bitwise_count(self.bits[w, : self.n] ^ query[w])
        # The smallest distance that keeps PREFILTER_ROWS rows (a histogram: 3x an argpartition).
        cut = int(np.searchsorted(np.cumsum(np.bincount(distance)), PREFILTER_ROWS))
        rows = np.flatnonzero(distance <= cut)
        if len(rows) > 4 * PREFILTER_ROWS:  # many ties (duplicate vectors): cap the rerank
            rows = rows[np.argpartition(distance[rows], PREFILTER_ROWS)[:PREFILTER_ROWS]]
        return rows


def sign_bits(vector: Vector, words: int) -> npt.NDArray[np.uint64]:
    packed = np.packbits(np.asarray(vector)[: words * 64] > 0)
    padded = np.zeros(words * 8, dtype=np.uint8)
    padded[: len(packed)] = packed
    return padded.view(np.uint64)


class InProcessIndex:
    """The embedded default. Runs on the event loop (a search at 100k rows is about a
    millisecond of numpy); never shared across processes. ``path``: snapshot file, loaded at
    start and written (atomically) by ``aclose``/``save``."""

    def __init__(
        self,
        dim: int,
        max_entries: int = 100_000,
        ttl_s: float = 86_400.0,
        path: Path | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._path = path
        self._clock = clock
        self._shelves: dict[str, _Shelf] = {}
        self._where: dict[str, tuple[str, int]] = {}  # id -> (scope, row)
        self._order: OrderedDict[str, None] = OrderedDict()  # ids, oldest first
        if path is not None and path.exists():
            self._load(path)

    async def upsert(self, id: str, vector: Vector, payload: Mapping[str, Any], scope: str) -> None:
        self.put(id, vector, payload, scope, self._clock())

    async def upsert_many(self, rows: Sequence[Row]) -> None:
        for id, vector, payload, scope in rows:
            self.put(id, vector, payload, scope, self._clock())

    def put(
        self, id: str, vector: Vector, payload: Mapping[str, Any], scope: str, at: float
    ) -> None:
        if id in self._where:
            self._remove(id)
        shelf = self._shelves.get(scope)
        if shelf is None:
            shelf = self._shelves[scope] = _Shelf(self.dim)
        self._where[id] = (scope, shelf.add(id, vector, payload, at))
        self._order[id] = None
        self._expire(self._clock())
        while len(self._order) > self.max_entries:
            self._remove(next(iter(self._order)))

    async def search(self, vector: Vector, scope_filter: str, limit: int) -> list[Hit]:
        shelf = self._shelves.get(scope_filter)
        if shelf is None or shelf.n == 0:
            return []
        rows = shelf.candidates(vector)
        scores = shelf.vectors[rows] @ vector
        best = np.argsort(-scores)[: limit + 8]  # a few spare in case some have expired
        oldest = self._clock() - self.ttl_s
        hits = [
            Hit(shelf.ids[r], float(scores[i]), shelf.payloads[r], shelf.stored_at[r])
            for i in best
            if shelf.stored_at[r := int(rows[i])] >= oldest
        ]
        return hits[:limit]

    async def delete(self, ids: Sequence[str] = (), match: Mapping[str, str] | None = None) -> int:
        doomed = {i for i in ids if i in self._where}
        wanted = dict(match or {})
        for id, (scope, row) in self._where.items() if wanted else ():
            if all(self._shelves[scope].payloads[row].get(k) == v for k, v in wanted.items()):
                doomed.add(id)
        for id in doomed:
            self._remove(id)
        return len(doomed)

    async def count(self) -> int:
        return len(self._order)

    async def clear(self) -> int:
        n = len(self._order)
        self._shelves.clear()
        self._where.clear()
        self._order.clear()
        return n

    async def aclose(self) -> None:
        if self._path is not None:
            self.save(self._path)

    def _remove(self, id: str) -> None:
        scope, row = self._where.pop(id)
        self._order.pop(id, None)
        shelf = self._shelves[scope]
        moved = shelf.remove(row)
        if moved is not None:
            self._where[moved] = (scope, row)
        if shelf.n == 0:
            del self._shelves[scope]

    def _expire(self, now: float) -> None:
        oldest = now - self.ttl_s
        while self._order:
            id = next(iter(self._order))
            scope, row = self._where[id]
            if self._shelves[scope].stored_at[row] >= oldest:
                return
            self._remove(id)

    def save(self, path: Path) -> None:
        """One .npz file: every vector in age order plus a JSON list of (id, scope, at, payload)."""
        rows, meta = [], []
        for id in self._order:
            scope, row = self._where[id]
            shelf = self._shelves[scope]
            rows.append(shelf.vectors[row])
            meta.append([id, scope, shelf.stored_at[row], shelf.payloads[row]])
        vectors = np.stack(rows) if rows else np.empty((0, self.dim), dtype=np.float32)
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            np.savez(f, vectors=vectors, meta=blob)
        tmp.replace(path)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors = data["vectors"]
                meta: Any = json.loads(data["meta"].tobytes())
        except (OSError, ValueError, KeyError) as exc:
            log.warning("semantic cache snapshot %s not loaded: %s", path, exc)
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            log.warning("semantic cache snapshot %s is for another model; ignored", path)
            return
        for vector, (id, scope, at, payload) in zip(vectors, meta, strict=True):
            self.put(str(id), vector, payload, str(scope), float(at))


ID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4c1e-9b7a-0d5e2f3a4b5c")
SWEEP_EVERY_S = 60.0


class QdrantStore:
    """qdrant-client: a server URL (``http(s)://...``), a local-mode path, or ``:memory:``.

    The client is synchronous and local mode is plain Python, so every call runs in one worker
    thread of its own: the event loop never waits on Qdrant, and calls never overlap."""

    def __init__(
        self,
        dim: int,
        location: str,
        max_entries: int = 100_000,
        ttl_s: float = 86_400.0,
        collection: str = "tiergate_semantic",
        clock: Clock = time.time,
    ) -> None:
        from qdrant_client import QdrantClient, models  # noqa: TID251 (the owner)

        self._m = models
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._collection = collection
        self._next_sweep = 0.0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant")
        remote = location.startswith(("http://", "https://"))
        local_path = not remote and location != ":memory:"
        self._client = QdrantClient(path=location) if local_path else QdrantClient(location)
        self._dim, self._remote = dim, remote
        if not self._client.collection_exists(collection):
            self._create()

    def _create(self) -> None:
        m = self._m
        params = m.VectorParams(size=self._dim, distance=m.Distance.COSINE)
        self._client.create_collection(self._collection, vectors_config=params)
        if self._remote:  # payload indexes only exist on a server (local mode warns)
            keyword, number = m.PayloadSchemaType.KEYWORD, m.PayloadSchemaType.FLOAT
            self._client.create_payload_index(self._collection, "_scope", keyword)
            self._client.create_payload_index(self._collection, "_stored_at", number)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def upsert(self, id: str, vector: Vector, payload: Mapping[str, Any], scope: str) -> None:
        await self._run(functools.partial(self._upsert_rows, [(id, vector, payload, scope)]))

    async def upsert_many(self, rows: Sequence[Row]) -> None:
        for i in range(0, len(rows), 1000):
            await self._run(functools.partial(self._upsert_rows, rows[i : i + 1000]))

    def _upsert_rows(self, rows: Sequence[Row]) -> None:
        now = self._clock()
        points = [
            self._m.PointStruct(
                id=_point_id(id),
                vector=vector.tolist(),
                payload={**payload, "_id": id, "_scope": scope, "_stored_at": now},
            )
            for id, vector, payload, scope in rows
        ]
        self._client.upsert(self._collection, points=points)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            expired = self._m.Range(lt=now - self.ttl_s)
            old = self._m.FieldCondition(key="_stored_at", range=expired)
            self._client.delete(self._collection, self._m.Filter(must=[old]))
        excess = self._client.count(self._collection, exact=True).count - self.max_entries
        if excess > 0:
            order = self._m.OrderBy(key="_stored_at", direction=self._m.Direction.ASC)
            oldest, _ = self._client.scroll(self._collection, limit=excess, order_by=order)
            self._client.delete(self._collection, [p.id for p in oldest])

    async def search(self, vector: Vector, scope_filter: str, limit: int) -> list[Hit]:
        return await self._run(lambda: self._search(vector, scope_filter, limit))

    def _search(self, vector: Vector, scope: str, limit: int) -> list[Hit]:
        m = self._m
        live = m.Range(gte=self._clock() - self.ttl_s)
        where = m.Filter(
            must=[
                m.FieldCondition(key="_scope", match=m.MatchValue(value=scope)),
                m.FieldCondition(key="_stored_at", range=live),
            ]
        )
        found = self._client.query_points(
            self._collection, query=vector.tolist(), query_filter=where, limit=limit
        )
        hits = []
        for point in found.points:
            payload = dict(point.payload or {})
            id, at = str(payload.pop("_id")), float(payload.pop("_stored_at"))
            payload.pop("_scope", None)
            hits.append(Hit(id, float(point.score), payload, at))
        return hits

    async def delete(self, ids: Sequence[str] = (), match: Mapping[str, str] | None = None) -> int:
        return await self._run(lambda: self._delete(ids, match))

    def _delete(self, ids: Sequence[str], match: Mapping[str, str] | None) -> int:
        before = self._client.count(self._collection, exact=True).count
        if ids:
            self._client.delete(self._collection, [_point_id(i) for i in ids])
        if match:
            m = self._m
            conditions = [
                m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in match.items()
            ]
            self._client.delete(self._collection, m.Filter(must=list(conditions)))
        return before - self._client.count(self._collection, exact=True).count

    async def count(self) -> int:
        return await self._run(lambda: self._client.count(self._collection, exact=True).count)

    async def clear(self) -> int:
        return await self._run(self._clear)

    def _clear(self) -> int:
        n: int = self._client.count(self._collection, exact=True).count
        self._client.delete_collection(self._collection)
        self._create()
        return n

    async def aclose(self) -> None:
        await self._run(self._client.close)
        self._pool.shutdown(wait=False)


def _point_id(id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, id))
