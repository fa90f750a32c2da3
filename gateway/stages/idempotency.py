"""Idempotency keys: a request with ``Idempotency-Key`` runs at most once per key per TTL.

Policy:
- The record is scoped to the API key (two keys may use the same idempotency key) and holds a
  hash of the request's canonical body (the exact cache's canonical form).
- First request: claims the record (``SET NX``) and runs. On success the complete answer is
  stored (streams as their chunks); on failure the claim is dropped so a retry can run.
- Same key and body again: the stored answer is replayed (as SSE when the retry streams),
  marked ``x-tiergate-idempotent-replay: true``; it is not charged again (this stage runs
  before the budget).
- Same key, different body: 422. While the first is still running: 409, or, with
  ``governance.idempotency.in_flight: wait``, wait for it (up to ``wait_s``) and replay.
- Redis unreachable: 503 with Retry-After (running the request anyway could run it twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.keys import canonical
from gateway.calls import Call, Note, Reply, ReplyStats
from gateway.errors import (
    ClientError,
    GatewayError,
    IdempotencyConflict,
    IdempotencyMismatch,
    StateUnavailable,
)
from gateway.pipeline import Next
from gateway.rules import Idempotency
from gateway.stages.replay import StreamAssembler, completion_to_chunks, iterate

PREFIX = "tg:idem:"
HEADER = "x-tiergate-idempotency-key"  # the edge maps Idempotency-Key to this
POLL_S = 0.05


def record_key(key_id: str, idem: str) -> str:
    return PREFIX + key_id + ":" + hashlib.sha256(idem.encode()).hexdigest()


class IdempotencyStage:
    name = "idempotency"

    def __init__(self, redis: aioredis.Redis, policy: Idempotency) -> None:
        self._redis = redis
        self._policy = policy

    async def __call__(self, call: Call, next_: Next) -> Reply:
        idem = call.headers.get(HEADER)
        if not idem:
            return await next_(call)
        if len(idem) > 255:
            raise ClientError("Idempotency-Key is longer than 255 characters.", status=400)
        key = record_key(call.principal.key_id, idem)
        body_hash = hashlib.sha256(
            canonical(call.request.model_dump(exclude_unset=True))
        ).hexdigest()
        deadline = time.monotonic() + self._policy.wait_s
        while True:
            claim = orjson.dumps({"state": "running", "hash": body_hash})
            try:
                won = await self._redis.set(key, claim, nx=True, ex=int(self._policy.ttl_s))
                existing = None if won else await self._redis.get(key)
            except (RedisError, OSError) as exc:
                raise StateUnavailable(
                    "Idempotency records are unreachable; try again shortly.", retry_after_s=1.0
                ) from exc
            if won:
                return await self._run(call, next_, key, body_hash)
            if existing is None:
                continue  # the first attempt failed and dropped its claim: claim it ourselves
            record: Any = orjson.loads(existing)
            if record.get("hash") != body_hash:
                raise IdempotencyMismatch(
                    "This Idempotency-Key was used with a different request body."
                )
            if record.get("state") == "done":
                return self._replay(call, record)
            if self._policy.in_flight == "conflict" or time.monotonic() >= deadline:
                raise IdempotencyConflict(
                    "A request with this Idempotency-Key is still in progress.", retry_after_s=1.0
                )
            await asyncio.sleep(POLL_S)

    async def _run(self, call: Call, next_: Next, key: str, body_hash: str) -> Reply:
        try:
            reply = await next_(call)
        except BaseException:
            await self._drop(key)
            raise
        return reply.with_chunks(self._recording(reply, call, key, body_hash))

    async def _recording(
        self, reply: Reply, call: Call, key: str, body_hash: str
    ) -> AsyncIterator[bytes]:
        chunks: list[bytes] = []
        complete = False
        try:
            async for chunk in reply.chunks:
                chunks.append(chunk)
                if not call.stream:
                    # The whole answer: store before handing it on (the edge closes after it).
                    await self._store(key, body_hash, call.stream, chunks)
                    complete = True
                yield chunk
            if call.stream:
                await self._store(key, body_hash, call.stream, chunks)
                complete = True
        finally:
            if not complete:
                await self._drop(key)

    async def _store(self, key: str, body_hash: str, stream: bool, chunks: list[bytes]) -> None:
        record = {
            "state": "done",
            "hash": body_hash,
            "stream": stream,
            "chunks": [c.decode() for c in chunks],
        }
        try:
            await self._redis.set(key, orjson.dumps(record), ex=int(self._policy.ttl_s))
        except (RedisError, OSError):
            await self._drop(key)

    async def _drop(self, key: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # else the claim expires with its TTL
            await self._redis.delete(key)

    def _replay(self, call: Call, record: Any) -> Reply:
        stored = [c.encode() for c in record.get("chunks", [])]
        if record.get("stream") == call.stream:
            chunks = stored
        elif call.stream:
            chunks = completion_to_chunks(stored[0], call.wants_usage_chunk)
        else:
            assembler = StreamAssembler()
            for c in stored:
                assembler.add(c)
            body = assembler.body()
            if body is None:
                raise GatewayError(
                    "The original streamed answer cannot be replayed as one body.", status=409
                )
            chunks = [body]
        return Reply(iterate(chunks), ReplyStats(), notes=(Note("idempotent-replay", "true"),))
