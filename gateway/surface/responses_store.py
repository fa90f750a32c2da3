"""Stored responses: ``GET /v1/responses/{id}`` and ``previous_response_id``, in Redis.

One key per response (``tg:resp:<id>``) holds the response object, the conversation that led to
it as chat messages (instructions excluded: OpenAI does not carry them over either) and the id of
the key that created it. Policy: a response is visible only to the key that created it; to any
other key it does not exist (404, never 403, so ids cannot be probed). Entries expire after the
rules' ``responses.ttl_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import GatewayError, StateUnavailable

PREFIX = "tg:resp:"


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

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def put(self, key_id: str, stored: Stored, ttl_s: float) -> None:
        value = orjson.dumps(
            {"key_id": key_id, "response": stored.response, "conversation": stored.conversation}
        )
        try:
            await self._redis.set(PREFIX + stored.response["id"], value, px=int(ttl_s * 1000))
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"could not store the response: {type(exc).__name__}") from None

    async def get(self, key_id: str, response_id: str, param: str | None = None) -> Stored:
        try:
            raw = await self._redis.get(PREFIX + response_id)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"could not read the response: {type(exc).__name__}") from None
        data = orjson.loads(raw) if raw else None
        if not isinstance(data, dict) or data.get("key_id") != key_id:
            raise ResponseNotFound(f"Response with id '{response_id}' not found.", param=param)
        return Stored(key_id, data["response"], data["conversation"])

    async def delete(self, key_id: str, response_id: str) -> None:
        await self.get(key_id, response_id)
        try:
            await self._redis.delete(PREFIX + response_id)
        except (RedisError, OSError) as exc:
            raise StateUnavailable(f"could not delete the response: {type(exc).__name__}") from None
