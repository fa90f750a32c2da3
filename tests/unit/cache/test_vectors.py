"""The VectorStore contract: every implementation passes every test in the first part."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from cache import vectors
from cache.vectors import InProcessIndex, QdrantStore, VectorStore

DIM = 8


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, s: float = 1.0) -> None:
        self.now += s


def unit(*values: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


Factory = Callable[[Clock, int, float], VectorStore]


def in_process(clock: Clock, max_entries: int, ttl_s: float) -> VectorStore:
    return InProcessIndex(DIM, max_entries=max_entries, ttl_s=ttl_s, clock=clock)


def qdrant_memory(clock: Clock, max_entries: int, ttl_s: float) -> VectorStore:
    return QdrantStore(DIM, ":memory:", max_entries=max_entries, ttl_s=ttl_s, clock=clock)


@pytest.fixture(params=["in_process", "qdrant_memory", "qdrant_path", "qdrant_edge"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "qdrant_edge":
        from cache.vectors_edge import EdgeStore

        def edge(clock: Clock, max_entries: int, ttl_s: float) -> VectorStore:
            path = tmp_path / "edge"
            return EdgeStore(DIM, path, max_entries=max_entries, ttl_s=ttl_s, clock=clock)

        return edge
    if request.param == "qdrant_path":

        def on_disk(clock: Clock, max_entries: int, ttl_s: float) -> VectorStore:
            path = str(tmp_path / "qdrant")
            return QdrantStore(DIM, path, max_entries=max_entries, ttl_s=ttl_s, clock=clock)

        return on_disk
    return in_process if request.param == "in_process" else qdrant_memory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def store(factory: Factory, clock: Clock) -> AsyncIterator[VectorStore]:
    s = factory(clock, 100, 3600.0)
    yield s
    await s.aclose()


@pytest.mark.asyncio
async def test_finds_what_was_stored_with_its_payload(store: VectorStore) -> None:
    earlier = ["9f86d081884c7d65", "60303ae22b998861"]  # a follow-up's earlier-turn digests
    await store.upsert("a", unit(1, 0), {"text": "alpha", "n": 1, "earlier": earlier}, "s1")
    await store.upsert("b", unit(0, 1), {"text": "beta"}, "s1")
    hits = await store.search(unit(1, 0.1), "s1", 5)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].payload["text"] == "alpha" and hits[0].payload["n"] == 1
    assert list(hits[0].payload["earlier"]) == earlier
    assert hits[0].score == pytest.approx(float(unit(1, 0) @ unit(1, 0.1)), abs=1e-5)
    assert hits[0].score > hits[1].score


@pytest.mark.asyncio
async def test_search_sees_its_own_scope_only(store: VectorStore) -> None:
    await store.upsert("a", unit(1, 0), {"text": "tenant one"}, "s1")
    await store.upsert("b", unit(1, 0), {"text": "tenant two"}, "s2")
    hits = await store.search(unit(1, 0), "s2", 5)
    assert [h.payload["text"] for h in hits] == ["tenant two"]
    assert await store.search(unit(1, 0), "s3", 5) == []


@pytest.mark.asyncio
async def test_limit_and_order(store: VectorStore) -> None:
    for i in range(6):
        await store.upsert(f"e{i}", unit(1, i), {"i": i}, "s")
    hits = await store.search(unit(1, 0), "s", 3)
    assert [h.payload["i"] for h in hits] == [0, 1, 2]


@pytest.mark.asyncio
async def test_upsert_replaces_an_id(store: VectorStore) -> None:
    await store.upsert("a", unit(1, 0), {"v": 1}, "s")
    await store.upsert("a", unit(0, 1), {"v": 2}, "s")
    assert await store.count() == 1
    hits = await store.search(unit(0, 1), "s", 5)
    assert [(h.id, h.payload["v"]) for h in hits] == [("a", 2)]


@pytest.mark.asyncio
async def test_expired_entries_are_never_returned(factory: Factory, clock: Clock) -> None:
    store = factory(clock, 100, 10.0)
    await store.upsert("old", unit(1, 0), {}, "s")
    clock.tick(5)
    await store.upsert("new", unit(1, 0.2), {}, "s")
    clock.tick(6)  # "old" is 11 s old, "new" 6 s
    assert [h.id for h in await store.search(unit(1, 0), "s", 5)] == ["new"]
    clock.tick(5)
    assert await store.search(unit(1, 0), "s", 5) == []
    await store.aclose()


@pytest.mark.asyncio
async def test_an_expired_best_match_gives_way_to_the_live_one_behind_it(
    factory: Factory, clock: Clock
) -> None:
    store = factory(clock, 100, 10.0)
    await store.upsert("old", unit(1, 0), {}, "s")
    clock.tick(5)
    await store.upsert("new", unit(1, 0.5), {}, "s")
    clock.tick(6)
    assert [h.id for h in await store.search(unit(1, 0), "s", 1)] == ["new"]
    await store.aclose()


@pytest.mark.asyncio
async def test_size_bound_evicts_oldest_first(factory: Factory, clock: Clock) -> None:
    store = factory(clock, 3, 3600.0)
    for i in range(5):
        await store.upsert(f"e{i}", unit(1, i), {"i": i}, "s" if i % 2 else "t")
        clock.tick()
    assert await store.count() == 3
    kept = {h.id for scope in ("s", "t") for h in await store.search(unit(1, 0), scope, 10)}
    assert kept == {"e2", "e3", "e4"}
    await store.aclose()


@pytest.mark.asyncio
async def test_delete_by_id_and_by_payload(store: VectorStore) -> None:
    await store.upsert("a", unit(1, 0), {"tenant": "t1", "alias": "x"}, "s1")
    await store.upsert("b", unit(1, 0), {"tenant": "t1", "alias": "y"}, "s2")
    await store.upsert("c", unit(1, 0), {"tenant": "t2", "alias": "x"}, "s3")
    assert await store.delete(ids=["a"]) == 1
    assert await store.delete(match={"tenant": "t1"}) == 1
    assert await store.count() == 1
    assert [h.id for h in await store.search(unit(1, 0), "s3", 5)] == ["c"]


@pytest.mark.asyncio
async def test_clear_drops_everything_and_the_store_stays_usable(store: VectorStore) -> None:
    await store.upsert("a", unit(1, 0), {"tenant": "t1"}, "s1")
    await store.upsert("b", unit(1, 1), {"tenant": "t2"}, "s2")
    assert await store.clear() == 2
    assert await store.count() == 0
    assert await store.search(unit(1, 0), "s1", 5) == []
    await store.upsert("c", unit(1, 0), {"tenant": "t1"}, "s1")
    assert [h.id for h in await store.search(unit(1, 0), "s1", 5)] == ["c"]


@pytest.mark.asyncio
async def test_bulk_load_is_the_same_as_upserts(store: VectorStore) -> None:
    rows = [(f"e{i}", unit(1, i), {"i": i}, "s") for i in range(10)]
    await store.upsert_many(rows)
    assert await store.count() == 10
    assert [h.id for h in await store.search(unit(1, 9), "s", 1)] == ["e9"]


# --- the in-process index only --------------------------------------------------------------


@pytest.mark.asyncio
async def test_large_scopes_use_the_prefilter_and_still_find_the_nearest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vectors, "EXACT_ROWS", 64)
    monkeypatch.setattr(vectors, "PREFILTER_ROWS", 16)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((500, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = InProcessIndex(DIM, max_entries=1000)
    await index.upsert_many([(f"e{i}", v, {"i": i}, "s") for i, v in enumerate(data)])
    for i in (3, 250, 499):
        query = data[i] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        best = int(np.argmax(data @ query))
        hits = await index.search(query, "s", 1)
        assert hits[0].id == f"e{best}"
        assert hits[0].score == pytest.approx(float(data[best] @ query), abs=1e-5)


@pytest.mark.asyncio
async def test_snapshot_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "semantic.npz"
    clock = Clock()
    index = InProcessIndex(DIM, max_entries=10, ttl_s=100.0, path=path, clock=clock)
    await index.upsert("a", unit(1, 0), {"text": "kept", "earlier": ["ab", "cd"]}, "s")
    await index.aclose()
    again = InProcessIndex(DIM, max_entries=10, ttl_s=100.0, path=path, clock=clock)
    hits = await again.search(unit(1, 0), "s", 1)
    assert [(h.id, h.payload["text"], h.stored_at) for h in hits] == [("a", "kept", 1000.0)]
    assert hits[0].payload["earlier"] == ["ab", "cd"]
    other_model = InProcessIndex(DIM + 1, path=path)
    assert await other_model.count() == 0


@pytest.mark.asyncio
async def test_deleting_rows_keeps_the_index_consistent() -> None:
    index = InProcessIndex(DIM, max_entries=100)
    for i in range(20):
        await index.upsert(f"e{i}", unit(1, i), {"i": i}, "s")
    await index.delete(ids=[f"e{i}" for i in range(0, 20, 3)])
    for i in range(20):
        hits = await index.search(unit(1, i), "s", 1)
        expected = f"e{i}" if i % 3 else None
        if expected is not None:
            assert hits[0].id == expected


@pytest.mark.asyncio
async def test_qdrant_edge_entries_survive_a_restart(tmp_path: Path) -> None:
    from cache.vectors_edge import EdgeStore

    first = EdgeStore(DIM, tmp_path / "edge")
    await first.upsert("a", unit(1, 0), {"text": "kept"}, "s")
    await first.aclose()
    again = EdgeStore(DIM, tmp_path / "edge")
    hits = await again.search(unit(1, 0), "s", 1)
    assert [h.payload["text"] for h in hits] == ["kept"]
    await again.aclose()


@pytest.mark.asyncio
async def test_qdrant_edge_builds_its_index_in_the_background(tmp_path: Path) -> None:
    from cache.vectors_edge import EdgeStore

    rng = np.random.default_rng(0)
    data = rng.standard_normal((60, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    store = EdgeStore(DIM, tmp_path / "edge", index_every=50)
    await store.upsert_many([(f"e{i}", v, {"i": i}, "s") for i, v in enumerate(data)])
    for i in (0, 30, 59):  # served while the build runs, and after it
        assert [h.id for h in await store.search(data[i], "s", 1)] == [f"e{i}"]
    store.wait_for_index()
    assert [h.id for h in await store.search(data[7], "s", 1)] == ["e7"]
    await store.aclose()
    again = EdgeStore(DIM, tmp_path / "edge", index_every=50)
    assert await again.count() == 60
    await again.aclose()


@pytest.mark.asyncio
async def test_qdrant_edge_empties_a_directory_written_for_another_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cache.vectors_edge import EdgeStore

    first = EdgeStore(DIM, tmp_path / "edge")
    await first.upsert("a", unit(1, 0), {}, "s")
    await first.aclose()
    other = EdgeStore(DIM + 1, tmp_path / "edge")
    assert await other.count() == 0
    assert "emptied" in caplog.text
    await other.aclose()
