"""The SemanticCache stage with a fake next_ and the deterministic HashEmbedder."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from cache.bound import CEILING
from cache.embedder import HashEmbedder, Vectors
from cache.policy import SemanticCachePolicy
from cache.semantic import SemanticLibrary
from cache.vectors import InProcessIndex
from gateway.calls import Call, Note, Principal, Reply, ReplyStats
from gateway.stages.replay import iterate
from gateway.stages.semantic_cache import SemanticCache, as_request
from gateway.tasks import Spawner

QUESTION = "How do I reset my password?"
PARAPHRASE = "how do I reset my password"
NEAR_MISS = "How do I reset my password again?"  # the trees: p 0.84, under the cut
POLICY = SemanticCachePolicy(enabled=True, threshold=0.8)


def completion(text: str, finish: str = "stop", **message: Any) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": text, **message}}
    return orjson.dumps(
        {"id": "c1", "object": "chat.completion", "choices": [choice | {"finish_reason": finish}]}
    )


class Upstream:
    """A fake next_: answers with ``body`` and counts calls."""

    def __init__(self, body: bytes, finish: str = "stop") -> None:
        self.body, self.finish, self.calls = body, finish, 0

    async def __call__(self, call: Call) -> Reply:
        self.calls += 1
        stats = ReplyStats(finish_reason=self.finish, model="sim-model")
        return Reply(iterate([self.body]), stats, notes=(Note("target", "sim"),))


def chat(make_call: Callable[..., Call], text: str = QUESTION, team: str = "t1", **kw: Any) -> Call:
    headers = kw.pop("headers", {})
    call = make_call(
        "fast", messages=[{"role": "user", "content": text}], **{"temperature": 0, **kw}
    )
    principal = Principal(key_id="k", team=team, aliases=None)
    return dataclasses.replace(call, principal=principal, headers=headers)


async def drain(reply: Reply) -> list[bytes]:
    return [c async for c in reply.chunks]


async def settle() -> None:
    for _ in range(5):  # let the spawned write run
        await asyncio.sleep(0)


def stage(policy: SemanticCachePolicy = POLICY, embedder: Any = None) -> SemanticCache:
    embedder = embedder or HashEmbedder()
    library = SemanticLibrary(embedder, InProcessIndex(embedder.dim))
    return SemanticCache(library, {"fast": policy}, Spawner())


def notes(reply: Reply) -> dict[str, str]:
    return {n.key: n.value for n in reply.notes}


@pytest.mark.asyncio
async def test_a_paraphrase_is_answered_from_the_cache(make_call) -> None:
    cache, upstream = stage(), Upstream(completion("Click 'Forgot password'."))
    first = await cache(chat(make_call), upstream)
    assert notes(first)["semantic"] == "miss"
    assert await drain(first) == [upstream.body]
    await settle()
    hit = await cache(chat(make_call, PARAPHRASE), upstream)
    assert upstream.calls == 1
    assert notes(hit)["cache"] == "semantic_hit" and float(notes(hit)["similarity"]) > 0.8
    assert await drain(hit) == [upstream.body]
    assert hit.stats.model == "sim-model" and hit.stats.finish_reason == "stop"


@pytest.mark.asyncio
async def test_a_streaming_request_gets_the_cached_answer_as_chunks(make_call) -> None:
    cache, upstream = stage(), Upstream(completion("Click 'Forgot password'."))
    await drain(await cache(chat(make_call), upstream))
    await settle()
    hit = await cache(chat(make_call, PARAPHRASE, stream=True), upstream)
    chunks = [orjson.loads(c) for c in await drain(hit)]
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert chunks[0]["choices"][0]["delta"]["content"] == "Click 'Forgot password'."


@pytest.mark.asyncio
async def test_other_tenants_never_see_the_answer(make_call) -> None:
    cache, upstream = stage(), Upstream(completion("secret"))
    await drain(await cache(chat(make_call, team="t1"), upstream))
    await settle()
    other = await cache(chat(make_call, team="t2"), upstream)
    assert "cache" not in notes(other) and upstream.calls == 2


@pytest.mark.asyncio
async def test_a_guarded_near_miss_goes_upstream(make_call) -> None:
    cache = stage(SemanticCachePolicy(enabled=True, threshold=0.5))
    upstream = Upstream(completion("Cancelled."))
    await drain(await cache(chat(make_call, "Cancel my subscription"), upstream))
    await settle()
    trap = await cache(chat(make_call, "Don't cancel my subscription"), upstream)
    assert upstream.calls == 2
    assert notes(trap)["semantic-veto"] == "negation"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "finish"),
    [
        (completion("cut o", "length"), "length"),
        (completion("", "tool_calls", tool_calls=[{"id": "t", "type": "function"}]), "tool_calls"),
    ],
)
async def test_incomplete_answers_and_tool_calls_are_not_stored(make_call, body, finish) -> None:
    cache, upstream = stage(), Upstream(body, finish)
    await drain(await cache(chat(make_call), upstream))
    await settle()
    await drain(await cache(chat(make_call), upstream))
    assert upstream.calls == 2


@pytest.mark.asyncio
async def test_sampled_requests_bypass_the_cache(make_call) -> None:
    cache, upstream = stage(), Upstream(completion("x"))
    reply = await cache(chat(make_call, temperature=0.7), upstream)
    assert notes(reply)["semantic"] == "bypass"
    await drain(reply)
    await settle()
    assert "cache" not in notes(await cache(chat(make_call, temperature=0.7), upstream))


@pytest.mark.asyncio
async def test_cache_control_no_cache_and_no_store(make_call) -> None:
    cache, upstream = stage(), Upstream(completion("x"))
    await drain(await cache(chat(make_call, headers={"cache-control": "no-store"}), upstream))
    await settle()
    await drain(await cache(chat(make_call), upstream))  # stores now
    await settle()
    skipped = await cache(chat(make_call, headers={"cache-control": "no-cache"}), upstream)
    assert "cache" not in notes(skipped) and upstream.calls == 3


@pytest.mark.asyncio
async def test_disabled_or_unknown_alias_passes_through_untouched(make_call) -> None:
    cache, upstream = stage(SemanticCachePolicy(enabled=False)), Upstream(completion("x"))
    assert notes(await cache(chat(make_call), upstream)) == {"target": "sim"}


class BrokenEmbedder(HashEmbedder):
    async def embed(self, texts: list[str]) -> Vectors:
        raise RuntimeError("model crashed")


class SlowEmbedder(HashEmbedder):
    async def embed(self, texts: list[str]) -> Vectors:
        await asyncio.sleep(1)
        return await super().embed(texts)


@pytest.mark.asyncio
@pytest.mark.parametrize("embedder", [BrokenEmbedder(), SlowEmbedder()])
async def test_embedder_trouble_never_fails_the_request(make_call, embedder, caplog) -> None:
    policy = SemanticCachePolicy(enabled=True, lookup_timeout_ms=20)
    cache, upstream = stage(policy, embedder), Upstream(completion("fine"))
    reply = await cache(chat(make_call), upstream)
    assert await drain(reply) == [upstream.body]
    assert notes(reply)["semantic"] == "error"
    assert "semantic cache lookup skipped" in caplog.text


class CountingBroken(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def embed(self, texts: list[str]) -> Vectors:
        self.calls += 1
        raise ConnectionError("store unreachable")


@pytest.mark.asyncio
async def test_repeated_failures_rest_the_cache_instead_of_waiting_each_call(make_call) -> None:
    embedder = CountingBroken()
    cache, upstream = stage(POLICY, embedder), Upstream(completion("fine"))
    for _ in range(10):
        reply = await cache(chat(make_call), upstream)
        assert await drain(reply) == [upstream.body]
    assert embedder.calls == 3  # then skipped for the rest period
    assert upstream.calls == 10
    cache._resting_until = 0.0  # the rest period is over: it tries again
    await drain(await cache(chat(make_call), upstream))
    assert embedder.calls == 4


class Verifications:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, float]] = []

    def __call__(self, alias: str, agreed: bool, similarity: float) -> None:
        self.seen.append((alias, agreed, similarity))


async def verified_hit(
    make_call, cached: str, fresh: str, sample: float, stream: bool = False
) -> tuple[Verifications, Upstream, Reply]:
    policy = SemanticCachePolicy(enabled=True, threshold=0.8, verify_sample=sample)
    embedder = HashEmbedder()
    library = SemanticLibrary(embedder, InProcessIndex(embedder.dim))
    seen = Verifications()
    cache = SemanticCache(library, {"fast": policy}, Spawner(), seen, roll=lambda: 0.5)
    await drain(await cache(chat(make_call), Upstream(completion(cached))))
    await settle()
    upstream = Upstream(completion(fresh))
    hit = await cache(chat(make_call, PARAPHRASE, stream=stream), upstream)
    await drain(hit)
    await settle()
    return seen, upstream, hit


@pytest.mark.asyncio
async def test_a_sampled_hit_is_checked_against_a_fresh_answer(make_call) -> None:
    same = "Click 'Forgot password' on the sign-in page."
    seen, upstream, hit = await verified_hit(make_call, same, same, sample=1.0, stream=True)
    assert notes(hit)["cache"] == "semantic_hit"  # the client got the hit at once
    assert upstream.calls == 1  # and the check asked upstream in the background
    assert seen.seen == [("fast", True, pytest.approx(1.0))]


@pytest.mark.asyncio
async def test_a_hit_whose_fresh_answer_differs_is_a_disagreement(make_call) -> None:
    seen, _, _ = await verified_hit(
        make_call, "Click 'Forgot password'.", "Our offices are closed on Sundays.", sample=1.0
    )
    assert len(seen.seen) == 1 and seen.seen[0][1] is False


@pytest.mark.asyncio
async def test_hits_outside_the_sample_are_not_checked(make_call) -> None:
    seen, upstream, _ = await verified_hit(make_call, "a", "a", sample=0.4)  # roll 0.5
    assert upstream.calls == 0 and seen.seen == []


def trees_library() -> tuple[Any, SemanticLibrary]:
    """The shipped trees verifier and a library that decides with it."""
    from cache.verifier import load_verifier

    verifier = load_verifier()
    embedder = HashEmbedder()
    return verifier, SemanticLibrary(embedder, InProcessIndex(embedder.dim), verifier=verifier)


@pytest.mark.asyncio
async def test_disagreeing_verifications_raise_the_alias_cut(make_call) -> None:
    verifier, library = trees_library()
    policy = SemanticCachePolicy(enabled=True, verify_sample=1.0, max_false_hit_rate=0.01)
    cuts: list[tuple[str, float]] = []
    cache = SemanticCache(
        library, {"fast": policy}, Spawner(), roll=lambda: 0.0, on_cut=lambda *c: cuts.append(c)
    )
    await drain(await cache(chat(make_call), Upstream(completion("Click 'Forgot password'."))))
    await settle()
    for _ in range(20):  # the same question again: a hit, re-asked, and the answers disagree
        hit = await cache(chat(make_call), Upstream(completion("Our offices are closed.")))
        assert notes(hit)["cache"] == "semantic_hit"
        await drain(hit)
        await settle()
    # 20 of 20 disagreed, all at the identical question's probability: no cut short of the
    # ceiling leaves them out
    assert cache.cut("fast") == pytest.approx(CEILING)
    assert cuts == [("fast", verifier.threshold), ("fast", CEILING)]  # the metric's gauge


@pytest.mark.asyncio
async def test_a_sampled_near_miss_is_compared_with_the_refused_candidate(make_call) -> None:
    _, library = trees_library()
    # edits off: the edit check refuses "again" added outright, and this tests the trees' samples
    policy = SemanticCachePolicy(
        enabled=True, verify_sample=0.5, max_false_hit_rate=0.01, edits=False
    )
    rolls = iter([0.0, 0.9, 0.0])  # the first request, the unsampled miss, the sampled one
    cache = SemanticCache(library, {"fast": policy}, Spawner(), roll=lambda: next(rolls))
    answer = completion("Click 'Forgot password'.")
    await drain(await cache(chat(make_call), Upstream(answer)))
    await settle()
    bound = cache._bounds["fast"]
    for expect in (0, 1):  # outside the sample: no sample; inside: one, at no upstream cost
        upstream = Upstream(answer)
        no_store = {"cache-control": "no-store"}  # the sample needs no write
        miss = await cache(chat(make_call, NEAR_MISS, headers=no_store), upstream)
        assert notes(miss)["semantic"] == "miss"
        await drain(miss)
        await settle()
        assert upstream.calls == 1 and len(bound.samples) == expect
    p, agreed = bound.samples[0]
    assert bound.lowest <= p < bound.cut and agreed  # the same answer: the candidate agreed


def test_a_new_stage_keeps_what_an_unchanged_bound_learned() -> None:
    from cache.bound import HitBound

    verifier, library = trees_library()
    bounded = SemanticCachePolicy(enabled=True, verify_sample=0.1, max_false_hit_rate=0.02)
    learned = HitBound(0.02, verifier.threshold, "trees", cut=0.8)
    other_scale = HitBound(0.02, verifier.threshold, "cross-encoder", cut=0.8)
    carried = {"fast": learned, "slow": learned, "gone": learned, "ce": other_scale}
    carried |= {"unsampled": learned}
    policies = {
        "fast": bounded,  # unchanged: kept
        "slow": bounded.model_copy(update={"max_false_hit_rate": 0.05}),  # a new bound
        "unsampled": bounded.model_copy(update={"verify_sample": 0.0}),  # no evidence: no bound
        "ce": bounded,  # learned on another verifier's probabilities
        "other": bounded,
    }
    stage = SemanticCache(library, policies, Spawner(), carried=carried)
    assert stage.bounds == {"fast": learned} and stage.cut("fast") == 0.8
    assert stage.cut("slow") is None  # starts again from the calibrated cut on first use


async def bounded_stage(make_call, rolls: list[float]) -> tuple[SemanticCache, Any]:
    """A stage whose alias has a false-hit bound, holding QUESTION's answer."""
    policy = SemanticCachePolicy(enabled=True, verify_sample=0.5, max_false_hit_rate=0.01)
    _, library = trees_library()
    roll = iter([0.9, *rolls])
    cache = SemanticCache(library, {"fast": policy}, Spawner(), roll=lambda: next(roll))
    await drain(await cache(chat(make_call), Upstream(completion("Click 'Forgot password'."))))
    await settle()
    return cache, cache._bounds["fast"]


@pytest.mark.asyncio
async def test_a_cut_off_answer_gives_no_sample(make_call) -> None:
    cache, bound = await bounded_stage(make_call, [0.0, 0.0])
    truncated = Upstream(completion("Click", finish="length"), finish="length")
    hit = await cache(chat(make_call, PARAPHRASE), truncated)  # sampled hit, re-asked
    assert notes(hit)["cache"] == "semantic_hit"
    await drain(hit)
    await settle()
    assert truncated.calls == 1 and len(bound.samples) == 0
    no_store = {"cache-control": "no-store"}
    miss = await cache(chat(make_call, NEAR_MISS, headers=no_store), truncated)
    await drain(miss)
    await settle()
    assert truncated.calls == 2 and len(bound.samples) == 0  # nor from a near miss


@pytest.mark.asyncio
async def test_a_hit_the_client_refused_is_a_sample_at_no_cost(make_call) -> None:
    cache, bound = await bounded_stage(make_call, [0.0])
    upstream = Upstream(completion("Click 'Forgot password'."))
    refused = {"cache-control": "no-cache, no-store"}
    reply = await cache(chat(make_call, PARAPHRASE, headers=refused), upstream)
    assert notes(reply)["semantic"] == "miss"
    await drain(reply)
    await settle()
    assert upstream.calls == 1 and len(bound.samples) == 1
    p, agreed = bound.samples[0]
    assert p >= bound.cut and agreed


def test_a_pinned_tier_keeps_its_own_cache_scope(make_call: Any) -> None:
    """The cache runs before the router: a call that pins a tier must not meet an entry a
    cheaper tier answered (x-tiergate-tier from a key allowed to pin)."""
    from cache.semantic import make_key

    policy = SemanticCachePolicy(enabled=True)
    allowed = Principal(key_id="k1", team="t1", aliases=None, tier_header=True)
    plain = make_call("fast", principal=allowed)
    pinned = make_call("fast", principal=allowed, headers={"x-tiergate-tier": "big"})
    keys = [make_key(as_request(c, c.request, "default"), policy) for c in (plain, pinned)]
    assert not isinstance(keys[0], str) and not isinstance(keys[1], str)
    assert keys[0].scope != keys[1].scope


@pytest.mark.asyncio
async def test_a_key_that_cannot_be_built_skips_the_cache(make_call, monkeypatch) -> None:
    """Whatever goes wrong while building the key, the request goes upstream: never a 500."""
    cache, upstream = stage(), Upstream(completion("An answer."))

    def broken(*args: Any, **kw: Any) -> Any:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(cache._library, "key", broken)
    reply = await cache(chat(make_call), upstream)
    assert upstream.calls == 1 and notes(reply)["semantic"] == "skip:key-error"
