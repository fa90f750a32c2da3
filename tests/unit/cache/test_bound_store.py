"""The false-hit bound shared by replicas through a real Redis (cache.bound_store)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from cache.bound import HitBound
from cache.bound_store import EPOCH_S, EPOCHS, BoundStore, bound_key
from cache.embedder import HashEmbedder
from cache.policy import SemanticCachePolicy
from cache.semantic import SemanticLibrary
from cache.vectors import InProcessIndex
from gateway.stages import semantic_cache
from gateway.stages.semantic_cache import SemanticCache
from gateway.tasks import Spawner


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    try:
        yield r
    finally:
        await r.aclose()


@pytest.mark.asyncio
async def test_counts_add_up_over_the_last_day_only(client: aioredis.Redis) -> None:
    now = [1_000_000.0]
    store = BoundStore(client, clock=lambda: now[0])
    key = bound_key(f"a-{uuid.uuid4().hex}", "trees", 0.02, 0.89)
    await store.add(key, 3, agreed=True)
    await store.add(key, 3, agreed=False)
    now[0] -= EPOCH_S * EPOCHS  # a day ago: out of the window
    await store.add(key, 5, agreed=True)
    now[0] += EPOCH_S * EPOCHS
    seen, failed = await store.totals(key, 8)
    assert seen == [0, 0, 0, 2, 0, 0, 0, 0] and failed == [0, 0, 0, 1, 0, 0, 0, 0]
    assert 0 < await client.ttl(f"{key}:{int(now[0] // EPOCH_S)}") <= EPOCH_S * (EPOCHS + 1)


def replica(store: BoundStore | None) -> SemanticCache:
    from cache.verifier import load_verifier

    embedder = HashEmbedder()
    library = SemanticLibrary(embedder, InProcessIndex(embedder.dim), verifier=load_verifier())
    return SemanticCache(library, {}, Spawner(), shared=store)


@pytest.mark.asyncio
async def test_replicas_learn_one_cut_from_all_their_samples(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(semantic_cache, "PULL_S", 0.0)  # pull on every sample
    policy = SemanticCachePolicy(enabled=True, verify_sample=0.1, max_false_hit_rate=0.01)
    alias = f"faq-{uuid.uuid4().hex}"
    shared = [replica(BoundStore(client)), replica(BoundStore(client))]
    alone = [replica(None), replica(None)]
    for stage in shared + alone:
        stage._bound(alias, policy)
    for _ in range(200):  # 400 agreeing samples in all, 200 each: a 1% bound needs about 385
        for stage in shared + alone:
            await stage._observe(alias, 0.7, agreed=True)
    calibrated = alone[0]._bounds[alias].calibrated
    assert [s.cut(alias) for s in alone] == [calibrated, calibrated]
    assert [s.cut(alias) for s in shared] == [pytest.approx(0.695)] * 2
    assert shared[1]._bounds[alias].count == 400


@pytest.mark.asyncio
async def test_a_redis_outage_leaves_each_replica_learning_alone() -> None:
    down = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    stage = replica(BoundStore(down))
    policy = SemanticCachePolicy(enabled=True, verify_sample=0.1, max_false_hit_rate=0.01)
    stage._bound("faq", policy)
    for _ in range(30):
        await stage._observe("faq", 0.95, agreed=False)
    bound: HitBound = stage._bounds["faq"]
    assert bound.count == 30 and bound.cut > bound.calibrated  # its own samples still count
    await down.aclose()
