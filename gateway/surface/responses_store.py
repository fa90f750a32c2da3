"""Stored responses: ``GET /v1/responses/{id}`` and ``previous_response_id``, in Redis.

One key per response (``tg:resp:<id>``) holds the response object, the conversation that led to
it as chat messages (instructions excluded: OpenAI does not carry them over either) and the id of
the key that created it. Policy: a response is visible only to the key that created it; to any
other key it does not exist (404, never 403, so ids cannot be probed). Entries expire after the
rules' ``responses.ttl_s``.

The write is not on the response path: it is spawned, and a read of an id whose write is still
running on this replica waits for it (read-your-writes here). A read that misses looks once more
after ``RETRY_S``, which covers a follow-up that reaches another replica before the write landed.
A failed write is logged; the response was already answered and is then not retrievable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import GatewayError, StateUnavailable
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.responses")
PREFIX = "tg:resp:"
RETRY_S = 0.05


class ResponseNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


@dataclass(frozen=True, slots=True)
class Stored:
    key_id: str
    response: dict[str, Any]
    conversation: list[dict[str, Any]]


class ResponseStore:
    """Reads and writes stored responses through the gateway's one Redis client."""

    def __init__(self, redis: Callable[[], aioredis.Redis | None], spawner: Spawner) -> None:
        self._redis = redis
        self._spawner = spawner
        self._pending: dict[str, asyncio.Task[Any]] = {}

    def _client(self) -> aioredis.Redis:
        client = self._redis()
        if client is None:
            raise StateUnavailable("The state store is not ready; try again.")
        return client

    def put(self, stored: Stored, ttl_s: float) -> None:
        """Save in the background (see the module docstring)."""
        response_id = stored.response["id"]
        value = orjson.dumps(
            {
                "key_id": stored.key_id,
                "response": stored.response,
                "conversation": stored.conversation,
            }
        )
        task = self._spawner.spawn(self._write(response_id, value, ttl_s), "store-response")
        self._pending[response_id] = task
        task.add_done_callback(lambda _: self._pending.pop(response_id, None))

    async def _write(self, response_id: str, value: bytes, ttl_s: float) -> None:
        try:
            await self._client().set(PREFIX + response_id, value, px=int(ttl_s * 1000))
        except (RedisError, OSError, StateUnavailable) as exc:
            log.warning("response %s not stored: %s", response_id, type(exc).__name__)

    async def get(self, key_id: str, response_id: str, param: str | None = None) -> Stored:
        pending = self._pending.get(response_id)
        if pending is not None:
            await asyncio.shield(pending)
        data = await self._read(response_id)
        if data is None:
            await asyncio.sleep(RETRY_S)
            data = await self._read(response_id)
        if data is None or data.get("key_id") != key_id:
            raise ResponseNotFound(f"Response with id '{response_id}' not found.", param=param)
        return Stored(key_id, data["response"], data["conversation"])

    async def _read(self, response_id: str) -> dict[str, Any] | None:
        try:
            raw = await self._client().get(PREFIX + response_id)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"could not read the response: {type(exc).__name__}") from None
        data = orjson.loads(raw) if raw else None
        return data if isinstance(data, dict) else None

    async def delete(self, key_id: str, response_id: str) -> None:
        await self.get(key_id, response_id)
        try:
            await self._client().delete(PREFIX + response_id)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"could not delete: {type(exc).__name__}") from None
