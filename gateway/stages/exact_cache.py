"""ExactCache: answer identical requests from Redis; keep the last good answer for outages.

Policy (safe by default):
- Only complete successful answers are stored: never errors, never ``finish_reason: length``
  (unless the alias's policy says so), never sampled answers (temperature unset or > 0, n > 1)
  unless the policy opts in. Requests that could not be stored are not looked up either
  (``x-tiergate-cache: bypass``): nothing could be there, and a Redis round trip is saved.
- The key covers every field that can change the answer plus tenant (the key's team), alias,
  rules version and namespace (``cache.keys``).
- ``Cache-Control: no-cache`` skips the lookup, ``no-store`` skips the write, ``max-age=N``
  accepts only entries younger than N seconds. ``x-tiergate-cache-namespace`` picks a namespace.
- Degraded mode: when every target fails and the alias has ``stale_on_failure``, the last good
  answer for the same request is served, whatever its age within ``stale_ttl_s``
  (``x-tiergate-cache: stale``).
- Redis trouble never fails a request here: the cache is skipped (``x-tiergate-cache: error``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from redis.exceptions import RedisError

from cache.exact import Entry, ExactStore
from cache.keys import Scope, fingerprint, redis_key
from gateway.calls import Call, Note, Reply, ReplyStats
from gateway.errors import AllTargetsFailed
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.rules import ExactCachePolicy
from gateway.stages.replay import relay_then, replay
from gateway.stages.tier_router import route_pin
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.cache")
STORABLE_FINISH = frozenset({"stop", "tool_calls", "function_call"})


@dataclass(frozen=True, slots=True)
class Directives:
    lookup: bool = True
    store: bool = True
    max_age_s: float | None = None
    namespace: str = "default"


def directives(headers: Mapping[str, str]) -> Directives:
    lookup = store = True
    max_age: float | None = None
    for part in headers.get("cache-control", "").lower().split(","):
        token = part.strip()
        if token == "no-cache":
            lookup = False
        elif token == "no-store":
            store = False
        elif token.startswith("max-age="):
            with contextlib.suppress(ValueError):
                max_age = max(0.0, float(token[8:]))
    namespace = headers.get("x-tiergate-cache-namespace", "default")[:64] or "default"
    return Directives(lookup, store, max_age, namespace)


def storable_request(request: ChatRequest, policy: ExactCachePolicy) -> bool:
    if policy.sampled:
        return True
    return request.temperature == 0 and (request.n or 1) == 1


class ExactCache:
    name = "exact_cache"

    def __init__(
        self,
        store: ExactStore,
        policies: Mapping[str, ExactCachePolicy],
        stale_aliases: frozenset[str],
        spawner: Spawner,
    ) -> None:
        self._store = store
        self._policies = dict(policies)
        self._stale = stale_aliases
        self._spawner = spawner

    async def __call__(self, call: Call, next_: Next) -> Reply:
        policy = self._policies.get(call.alias)
        request = call.request
        if policy is None or not policy.enabled:
            return await next_(call)
        # Embeddings are deterministic: always cacheable. Chat: see storable_request.
        if isinstance(request, ChatRequest) and not storable_request(request, policy):
            return (await next_(call)).noted(Note("cache", "bypass"))
        d = directives(call.headers)
        scope = Scope(
            call.principal.team, call.alias, call.config_version, d.namespace, route_pin(call)
        )
        body = request.model_dump(exclude_unset=True)
        key = redis_key(scope, fingerprint(scope, call.kind.value, body))
        entry: Entry | None = None
        looked = False
        if d.lookup:
            entry, looked = await self._get(key), True
            if entry is not None:
                age = entry.age_s()
                limit = policy.ttl_s if d.max_age_s is None else min(policy.ttl_s, d.max_age_s)
                if age <= limit:
                    return self._replay(call, entry, "hit", age)
        try:
            reply = await next_(call)
        except AllTargetsFailed:
            if call.alias not in self._stale:
                raise
            if not looked:
                entry = await self._get(key)
            if entry is None or entry.age_s() > policy.stale_ttl_s:
                raise
            return self._replay(call, entry, "stale", entry.age_s())
        if any(note.key == "cache" for note in reply.notes):
            return reply  # answered by the semantic cache: not this request's own answer
        if not d.store:
            return reply.noted(Note("cache", "miss"))
        chunks = self._recording(reply, call, key, policy, scope.tenant)
        return reply.with_chunks(chunks).noted(Note("cache", "miss"))

    async def _get(self, key: str) -> Entry | None:
        try:
            return await self._store.get(key)
        except (RedisError, OSError) as exc:
            log.warning("exact cache lookup skipped: %s", type(exc).__name__)
            return None

    def _replay(self, call: Call, entry: Entry, outcome: str, age_s: float) -> Reply:
        chunks = replay(entry.body, call.stream, call.wants_usage_chunk)
        stats = ReplyStats(model=entry.model, finish_reason="stop")
        return Reply(
            chunks, stats, notes=(Note("cache", outcome), Note("cache-age", f"{age_s:.0f}"))
        )

    def _recording(
        self, reply: Reply, call: Call, key: str, policy: ExactCachePolicy, tenant: str
    ) -> AsyncIterator[bytes]:
        """Relay the answer; once it completed, store it (off the response path)."""
        return relay_then(
            reply.chunks,
            call.stream,
            lambda body: self._maybe_store(reply, key, policy, body, tenant),
            policy.max_entry_bytes,
        )

    def _maybe_store(
        self, reply: Reply, key: str, policy: ExactCachePolicy, body: bytes | None, tenant: str
    ) -> None:
        finish = reply.stats.finish_reason
        complete = finish in STORABLE_FINISH or (policy.store_truncated and finish == "length")
        if not complete and not (finish is None and b'"embedding"' in (body or b"")):
            return
        if body is None or len(body) > policy.max_entry_bytes:
            return  # too large to keep: one call must not fill the store
        target = next((n.value for n in reply.notes if n.key == "target"), None)
        entry = Entry(body=body, stored_at=time.time(), model=reply.stats.model, target=target)
        self._spawner.spawn(self._put(key, entry, policy, tenant), "exact-cache-put")

    async def _put(self, key: str, entry: Entry, policy: ExactCachePolicy, tenant: str) -> None:
        try:
            stored = await self._store.put_capped(
                key, entry, policy.stale_ttl_s, tenant, policy.max_tenant_bytes
            )
        except (RedisError, OSError) as exc:
            log.warning("exact cache write skipped: %s", type(exc).__name__)
            return
        if not stored:
            log.warning("exact cache write skipped: tenant '%s' is at its byte cap", tenant)
