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
  ``lookup_timeout_ms`` skips the cache with a log line (note ``semantic: error``); after 3
  such failures in a row the stage skips lookups for 10 s, so an outage of a Qdrant server
  costs requests nothing, not a timeout each.
- Notes: ``cache: semantic_hit``, ``similarity``, ``cache-age`` on a hit; ``semantic: miss`` and
  the vetoing guards (``semantic-veto``) otherwise, for logs and metrics.
- Verification (``verify_sample`` > 0): that share of hits is re-asked upstream in the
  background (after the hit was answered; charged like any call); the fresh and cached answers
  are embedded and compared, and the outcome is reported (``on_verified``: a metric), so the
  false-hit rate is observed in production, not only in the evaluation. With
  ``max_false_hit_rate`` set, those outcomes also move the alias's verifier cut so that the
  observed rate stays under the bound (cache.bound; the counts are shared by replicas through
  Redis, cache.bound_store, and kept across a reload that leaves the alias's bound, verifier
  and calibrated cut unchanged). A sampled request that
  misses is a sample too, at no upstream cost: once its upstream answer is complete, it is
  compared in the background with the answer of the candidate the verifier refused (if that
  candidate scored at least the bound's lowest cut), so the cut can also come down where
  refused candidates turn out to agree.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from cache.bound import HitBound
from cache.bound_store import PULL_S, BoundStore, bound_key
from cache.policy import SemanticCachePolicy
from cache.semantic import Answer, Key, Lookup, Request, SemanticLibrary
from cache.vectors import Hit, Vector
from gateway.calls import Call, Note, Reply, ReplyStats
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.rules import ExactCachePolicy
from gateway.stages.exact_cache import STORABLE_FINISH, directives, storable_request
from gateway.stages.replay import relay_then, replay
from gateway.stages.tier_router import route_pin
from gateway.tasks import Spawner

# The largest answer the semantic cache keeps (larger ones are served, not stored).
MAX_ENTRY_BYTES = 256 * 1024
log = logging.getLogger("tiergate.cache")
DETERMINISTIC = ExactCachePolicy(sampled=False)  # semantic hits never serve sampled answers
SEMANTIC_FINISH = STORABLE_FINISH & {"stop"}
OnVerified = Callable[[str, bool, float], None]  # alias, agreed, similarity of the answers
OnCut = Callable[[str, float], None]  # alias, the cut its false-hit bound set
REST_AFTER, REST_S = 3, 10.0  # failed lookups in a row; then seconds without lookups


class SemanticCache:
    name = "semantic_cache"

    def __init__(
        self,
        library: SemanticLibrary,
        policies: Mapping[str, SemanticCachePolicy],
        spawner: Spawner,
        on_verified: OnVerified | None = None,
        roll: Callable[[], float] = random.random,
        on_cut: OnCut | None = None,
        carried: Mapping[str, HitBound] | None = None,
        shared: BoundStore | None = None,
    ) -> None:
        self._library = library
        self._policies = dict(policies)
        self._spawner = spawner
        self._on_verified = on_verified
        self._on_cut = on_cut
        self._shared = shared  # every replica's samples (Redis); None: this process's only
        self._pulled: dict[str, float] = {}  # alias -> monotonic time of its last pull
        self._unshared_until = 0.0  # after a failure, samples stay local for a while
        self._roll = roll
        self._failures = 0  # lookups failed in a row
        self._resting_until = 0.0  # monotonic time until which lookups are skipped
        # alias -> its cut under max_false_hit_rate; a reload keeps what an alias learned
        # while its bound and calibrated cut are unchanged
        self._bounds: dict[str, HitBound] = {
            alias: bound
            for alias, bound in (carried or {}).items()
            if alias in self._policies
            and self._policies[alias].max_false_hit_rate == bound.bound
            and self._policies[alias].verify_sample > 0
            and library.default_cut(self._policies[alias]) == bound.calibrated
            and self._scale(self._policies[alias]) == bound.scale
        }

    async def __call__(self, call: Call, next_: Next) -> Reply:
        policy = self._policies.get(call.alias)
        request = call.request
        if policy is None or not policy.enabled or not isinstance(request, ChatRequest):
            return await next_(call)
        if not storable_request(request, DETERMINISTIC) or request.logprobs:
            return (await next_(call)).noted(Note("semantic", "bypass"))
        d = directives(call.headers)
        try:
            key = self._library.key(as_request(call, request, d.namespace), policy)
        except (ValueError, ArithmeticError, RecursionError) as exc:  # never a 500 from the cache
            log.warning("semantic cache key failed (%s); skipped", type(exc).__name__)
            key = "key-error"
        if isinstance(key, str):
            return (await next_(call)).noted(Note("semantic", f"skip:{key}"))
        bound = self._bound(call.alias, policy)
        sampled = bool(policy.verify_sample) and self._roll() < policy.verify_sample
        explore = bound.lowest if bound is not None and sampled else None
        found = await self._lookup(key, policy, bound, explore)
        if found is not None and found.hit is not None and d.lookup:
            age = max(0.0, time.time() - found.hit.stored_at)
            limit = policy.ttl_s if d.max_age_s is None else min(policy.ttl_s, d.max_age_s)
            if age <= limit:
                if sampled:
                    self._spawner.spawn(
                        self._verify(call, next_, found.hit, found.confidence, policy),
                        "semantic-verify",
                    )
                return self._replay(call, found.hit, age)
        reply = await next_(call)
        if found is None:
            return reply.noted(Note("semantic", "error"))
        notes = [Note("semantic", "miss")]
        if found.vetoes:
            notes.append(Note("semantic-veto", ",".join(dict.fromkeys(found.vetoes))))
        near = sample_of(found, bound) if bound is not None and sampled else None
        if not d.store and near is None:
            return reply.noted(*notes)
        recording = self._recording(reply, call, key, found, d.store, near, policy)
        return reply.with_chunks(recording).noted(*notes)

    def _bound(self, alias: str, policy: SemanticCachePolicy) -> HitBound | None:
        """The alias's online cut, when its policy sets a false-hit bound, samples (without
        them nothing could hold it) and has a verifier."""
        if policy.max_false_hit_rate is None or not policy.verify_sample:
            return None  # most aliases: decided before anything is computed
        start = self._library.default_cut(policy)
        if start is None:
            return None
        bound = self._bounds.get(alias)
        if bound is None:
            scale = self._scale(policy)
            bound = self._bounds[alias] = HitBound(policy.max_false_hit_rate, start, scale)
            if self._on_cut is not None:
                self._on_cut(alias, bound.cut)
        return bound

    def _scale(self, policy: SemanticCachePolicy) -> str:
        """Which verifier's probability an alias's cut is on."""
        ce = self._library.cross_encoder is not None and policy.cross_encoder
        return "cross-encoder" if ce else "trees"

    @property
    def bounds(self) -> Mapping[str, HitBound]:
        """What each bounded alias has learned (carried into the next rules' stage)."""
        return self._bounds

    def cut(self, alias: str) -> float | None:
        """The alias's current verifier cut under its false-hit bound (None: not bounded)."""
        bound = self._bounds.get(alias)
        return None if bound is None else bound.cut

    async def _lookup(
        self,
        key: Key,
        policy: SemanticCachePolicy,
        bound: HitBound | None = None,
        explore: float | None = None,
    ) -> Lookup | None:
        now = time.monotonic()
        if now < self._resting_until:
            return None  # the store or the embedder keeps failing: do not wait on it each call
        cut = None if bound is None else bound.cut
        try:
            found = await asyncio.wait_for(
                self._library.lookup(key, policy, cut=cut, explore=explore),
                policy.lookup_timeout_ms / 1000,
            )
        except TimeoutError:
            self._failed(now, f"slower than {policy.lookup_timeout_ms} ms")
            return None
        except Exception as exc:  # the embedder or the store: never the request's failure
            self._failed(now, f"{type(exc).__name__}: {exc}")
            return None
        self._failures = 0
        return found

    def _failed(self, now: float, why: str) -> None:
        """After REST_AFTER failures in a row, skip the semantic cache for REST_S seconds."""
        self._failures += 1
        if self._failures >= REST_AFTER:
            self._resting_until = now + REST_S
            self._failures = 0
            log.warning(
                "semantic cache lookup skipped (%s); %d failures in a row: off for %.0f s",
                why,
                REST_AFTER,
                REST_S,
            )
        else:
            log.warning("semantic cache lookup skipped: %s", why)

    async def _verify(
        self,
        call: Call,
        next_: Next,
        hit: Hit,
        p: float | None,
        policy: SemanticCachePolicy,
    ) -> None:
        """Ask upstream what the cached answer stood in for; compare the two answers' meaning."""
        try:
            request = call.request
            if isinstance(request, ChatRequest) and request.stream:
                call = call.with_request(
                    request.model_copy(update={"stream": False, "stream_options": None})
                )
            reply = await next_(call)
            body = b"".join([chunk async for chunk in reply.chunks])
            if reply.stats.finish_reason != "stop":
                return  # a cut-off or failed answer says nothing about the cached one
            similarity = await self._agreement(body, hit)
        except Exception as exc:  # a failed verification is only a missing sample
            log.info("semantic hit verification skipped: %s", type(exc).__name__)
            return
        if similarity is None:
            return
        agreed = similarity >= policy.verify_agreement
        await self._observe(call.alias, p, agreed)
        if not agreed:
            log.warning(
                "semantic hit disagreed with a fresh answer (alias %s, similarity %.3f, "
                "hit similarity %.3f)",
                call.alias,
                similarity,
                hit.score,
            )
        if self._on_verified is not None:
            self._on_verified(call.alias, agreed, similarity)

    async def _agreement(self, fresh_body: bytes, hit: Hit) -> float | None:
        """How alike a fresh answer and an entry's answer are (None: one has no text)."""
        fresh = answer_text(fresh_body)
        cached = answer_text(str(hit.payload.get("body", "")))
        if fresh is None or cached is None:
            return None
        vectors = await self._library.embedder.embed([fresh, cached])
        return float(vectors[0] @ vectors[1])

    async def _observe(self, alias: str, p: float | None, agreed: bool) -> None:
        """One sample for the alias's false-hit bound, if it has one; shared with the other
        replicas when a store is set (its failure leaves this process learning alone)."""
        bound = self._bounds.get(alias)
        if bound is None or p is None or not bound.wants(p):
            return
        before = bound.cut
        bound.observe(p, agreed)
        if self._shared is not None and time.monotonic() >= self._unshared_until:
            key = bound_key(alias, bound.scale, bound.bound, bound.calibrated)
            try:
                await self._shared.add(key, bound.index(p), agreed)
                now = time.monotonic()
                if now - self._pulled.get(alias, float("-inf")) >= PULL_S:
                    self._pulled[alias] = now
                    bound.adopt(*await self._shared.totals(key, bound.points))
            except Exception as exc:  # Redis down: this process's own samples still count
                self._unshared_until = time.monotonic() + REST_S
                log.warning(
                    "semantic bound samples kept local for %.0f s: %s", REST_S, type(exc).__name__
                )
        if bound.cut != before:
            if self._on_cut is not None:
                self._on_cut(alias, bound.cut)
            log.warning(
                "semantic cache cut for alias %s moved %.3f -> %.3f (false-hit bound %.4f, "
                "%d samples)",
                alias,
                before,
                bound.cut,
                bound.bound,
                bound.count,
            )

    async def _explore(
        self, alias: str, hit: Hit, p: float, body: bytes, policy: SemanticCachePolicy
    ) -> None:
        """A near miss's sample: would the refused candidate's answer have agreed?"""
        try:
            similarity = await self._agreement(body, hit)
        except Exception as exc:  # a failed comparison is only a missing sample
            log.info("semantic near-miss sample skipped: %s", type(exc).__name__)
            return
        if similarity is not None:
            await self._observe(alias, p, similarity >= policy.verify_agreement)

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
        self,
        reply: Reply,
        call: Call,
        key: Key,
        found: Lookup,
        store: bool,
        near: tuple[Hit, float] | None,
        policy: SemanticCachePolicy,
    ) -> AsyncIterator[bytes]:
        """Relay the answer; once it is complete, store it and take the near miss's sample
        (both off the response path)."""

        def completed(body: bytes | None) -> None:
            if store:
                self._maybe_store(reply, key, found.vector, found.context_vector, body)
            if near is not None and body is not None and reply.stats.finish_reason == "stop":
                sample = self._explore(call.alias, near[0], near[1], body, policy)
                self._spawner.spawn(sample, "semantic-explore")

        return relay_then(reply.chunks, call.stream, completed, MAX_ENTRY_BYTES)

    def _maybe_store(
        self, reply: Reply, key: Key, vector: Vector, context: Vector | None, body: bytes | None
    ) -> None:
        if body is None or reply.stats.finish_reason not in SEMANTIC_FINISH:
            return
        if len(body) > MAX_ENTRY_BYTES:
            return  # paraphrase-matched answers are short; one call must not fill the index
        if b'"tool_calls"' in body or b'"function_call"' in body:
            return
        target = next((n.value for n in reply.notes if n.key == "target"), None)
        answer = Answer(body=body, model=reply.stats.model, target=target)
        self._spawner.spawn(self._put(key, vector, answer, context), "semantic-cache-put")

    async def _put(self, key: Key, vector: Vector, answer: Answer, context: Vector | None) -> None:
        try:
            await self._library.put(key, vector, answer, context)
        except Exception as exc:  # never the request's failure
            log.warning("semantic cache write skipped: %s: %s", type(exc).__name__, exc)


def sample_of(found: Lookup, bound: HitBound) -> tuple[Hit, float] | None:
    """What a sampled request that was not answered from the cache teaches the bound: its
    refused nearest candidate, or a hit the client's directives refused (the upstream answered
    either way), when it scored high enough to matter."""
    hit, p = (
        (found.hit, found.confidence) if found.hit is not None else (found.nearest, found.nearest_p)
    )
    return (hit, p) if hit is not None and p is not None and bound.wants(p) else None


def answer_text(body: bytes | str) -> str | None:
    """The first choice's text of a chat.completion body; None if there is none."""
    try:
        data = orjson.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) and content else None


def as_request(call: Call, request: ChatRequest, namespace: str) -> Request:
    messages: list[dict[str, Any]] = [m.model_dump(exclude_none=True) for m in request.messages]
    params = request.model_dump(exclude_unset=True)
    return Request(
        call.principal.team,
        call.alias,
        call.config_version,
        messages,
        params,
        namespace,
        route_pin(call),
    )
