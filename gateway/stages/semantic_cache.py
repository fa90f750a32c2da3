"""SemanticCache: answer a paraphrase of an answered question from the cache (cache.semantic).

Policy (safe by default; the exact cache runs first and answers identical requests):
- Off unless the alias's ``SemanticCachePolicy`` enables it.
- Only deterministic requests (temperature 0, n 1: ``storable_request``) without logprobs are
  looked up or stored. Only complete answers are stored: ``finish_reason: stop`` and no tool
  calls (a tool call's arguments come from the exact words of the request, and a paraphrase
  may need other arguments). Streaming requests are answered from cache as SSE.
- ``Cache-Control: no-cache`` skips the lookup, ``no-store`` the write, ``max-age=N`` accepts only
  younger entries; ``x-tiergate-cache-namespace`` picks a namespace (as for the exact cache).
- The embedder and the store never fail a request: an error or a lookup slower than
  ``lookup_timeout_ms`` skips the cache with a log line (note ``semantic: error``).
- Notes: ``cache: semantic_hit``, ``similarity``, ``cache-age`` on a hit; ``semantic: miss`` and
  the vetoing guards (``semantic-veto``) otherwise, for logs and metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from cache.policy import SemanticCachePolicy
from cache.semantic import Answer, Key, Lookup, Request, SemanticLibrary
from cache.vectors import Hit, Vector
from gateway.calls import Call, Note, Reply, ReplyStats
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.rules import ExactCachePolicy
from gateway.stages.exact_cache import STORABLE_FINISH, directives, storable_request
from gateway.stages.replay import relay_then, replay
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.cache")
DETERMINISTIC = ExactCachePolicy(sampled=False)  # semantic hits never serve sampled answers
SEMANTIC_FINISH = STORABLE_FINISH & {"stop"}


class SemanticCache:
    name = "semantic_cache"

    def __init__(
        self,
        library: SemanticLibrary,
        policies: Mapping[str, SemanticCachePolicy],
        spawner: Spawner,
    ) -> None:
        self._library = library
        self._policies = dict(policies)
        self._spawner = spawner

    async def __call__(self, call: Call, next_: Next) -> Reply:
        policy = self._policies.get(call.alias)
        request = call.request
        if policy is None or not policy.enabled or not isinstance(request, ChatRequest):
            return await next_(call)
        if not storable_request(request, DETERMINISTIC) or request.logprobs:
            return (await next_(call)).noted(Note("semantic", "bypass"))
        d = directives(call.headers)
        key = self._library.key(as_request(call, request, d.namespace), policy)
        if isinstance(key, str):
            return (await next_(call)).noted(Note("semantic", f"skip:{key}"))
        found = await self._lookup(key, policy)
        if found is not None and found.hit is not None and d.lookup:
            age = max(0.0, time.time() - found.hit.stored_at)
            limit = policy.ttl_s if d.max_age_s is None else min(policy.ttl_s, d.max_age_s)
            if age <= limit:
                return self._replay(call, found.hit, age)
        reply = await next_(call)
        if found is None:
            return reply.noted(Note("semantic", "error"))
        notes = [Note("semantic", "miss")]
        if found.vetoes:
            notes.append(Note("semantic-veto", ",".join(dict.fromkeys(found.vetoes))))
        if not d.store:
            return reply.noted(*notes)
        return reply.with_chunks(self._recording(reply, call, key, found.vector)).noted(*notes)

    async def _lookup(self, key: Key, policy: SemanticCachePolicy) -> Lookup | None:
        try:
            return await asyncio.wait_for(
                self._library.lookup(key, policy), policy.lookup_timeout_ms / 1000
            )
        except TimeoutError:
            log.warning(
                "semantic cache lookup skipped: slower than %d ms", policy.lookup_timeout_ms
            )
        except Exception as exc:  # the embedder or the store: never the request's failure
            log.warning("semantic cache lookup skipped: %s: %s", type(exc).__name__, exc)
        return None

    def _replay(self, call: Call, hit: Hit, age_s: float) -> Reply:
        body = str(hit.payload.get("body", "")).encode()
        chunks = replay(body, call.stream, call.wants_usage_chunk)
        stats = ReplyStats(model=str(hit.payload.get("model") or "") or None, finish_reason="stop")
        notes = (
            Note("cache", "semantic_hit"),
            Note("similarity", f"{hit.score:.3f}"),
            Note("cache-age", f"{age_s:.0f}"),
        )
        return Reply(chunks, stats, notes=notes)

    def _recording(
        self, reply: Reply, call: Call, key: Key, vector: Vector
    ) -> AsyncIterator[bytes]:
        """Relay the answer; once it is complete, store it (off the response path)."""
        return relay_then(
            reply.chunks, call.stream, lambda body: self._maybe_store(reply, key, vector, body)
        )

    def _maybe_store(self, reply: Reply, key: Key, vector: Vector, body: bytes | None) -> None:
        if body is None or reply.stats.finish_reason not in SEMANTIC_FINISH:
            return
        if b'"tool_calls"' in body or b'"function_call"' in body:
            return
        target = next((n.value for n in reply.notes if n.key == "target"), None)
        answer = Answer(body=body, model=reply.stats.model, target=target)
        self._spawner.spawn(self._put(key, vector, answer), "semantic-cache-put")

    async def _put(self, key: Key, vector: Vector, answer: Answer) -> None:
        try:
            await self._library.put(key, vector, answer)
        except Exception as exc:  # never the request's failure
            log.warning("semantic cache write skipped: %s: %s", type(exc).__name__, exc)


def as_request(call: Call, request: ChatRequest, namespace: str) -> Request:
    messages: list[dict[str, Any]] = [m.model_dump(exclude_none=True) for m in request.messages]
    params = request.model_dump(exclude_unset=True)
    return Request(
        call.principal.team, call.alias, call.config_version, messages, params, namespace
    )
