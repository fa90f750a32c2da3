"""The cross-encoder hit verifier: the shipped artifact loads, tells a paraphrase from a trap,
decides lookups, and the cache falls back to the trees when it is missing."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from cache.cross_encoder import CE_ARTIFACT, CE_META, CrossEncoder, load_cross_encoder
from cache.embedder import HashEmbedder
from cache.policy import SemanticCachePolicy
from cache.semantic import Answer, Key, Request, SemanticLibrary
from cache.vectors import InProcessIndex
from cache.verifier import load_verifier


@pytest.fixture(scope="module")
def ce() -> CrossEncoder:
    loaded = load_cross_encoder()
    assert loaded is not None, "the shipped cross-encoder must load"
    return loaded


def test_the_shipped_artifact_says_where_it_came_from() -> None:
    meta = json.loads(CE_META.read_text())
    assert meta["kind"] == "cross-encoder"
    assert meta["trained_by"].startswith("tiergate train cache-verifier --kind cross-encoder")
    assert meta["data"]["calibrated_on"]["split"] == "dev"
    assert "never" in meta["data"]["test"]
    assert 0.0 < meta["threshold"] < 1.0
    assert CE_ARTIFACT.stat().st_size < 30_000_000


@pytest.mark.parametrize(
    ("cached", "paraphrase", "trap"),
    [
        (
            "How do I cancel my subscription?",
            "How can I cancel my subscription?",
            "How do I not cancel my subscription?",
        ),
        (
            "What is the best way to learn Python?",
            "How should I go about learning Python?",
            "What is the worst way to learn Python?",
        ),
        (
            "Is 200 mg of ibuprofen safe?",
            "Is it safe to take 200 mg of ibuprofen?",
            "Is 800 mg of ibuprofen safe?",
        ),
    ],
)
def test_a_paraphrase_scores_above_its_trap(
    ce: CrossEncoder, cached: str, paraphrase: str, trap: str
) -> None:
    p_para, p_trap = ce.score_pairs([(cached, paraphrase), (cached, trap)])
    assert p_para > p_trap
    assert p_trap < ce.threshold


def request(text: str) -> Request:
    return Request("t", "a", "v1", [{"role": "user", "content": text}], {"temperature": 0})


@pytest.mark.asyncio
async def test_the_cross_encoder_decides_the_lookup(ce: CrossEncoder) -> None:
    embedder = HashEmbedder()
    anywhere = dataclasses.replace(ce, floor=0.0)  # the hashing embedder's cosines are low
    library = SemanticLibrary(
        embedder, InProcessIndex(embedder.dim, 16), verifier=load_verifier(), cross_encoder=anywhere
    )
    assert library.default_cut(SemanticCachePolicy(enabled=True)) == ce.threshold  # default
    trees = SemanticCachePolicy(enabled=True, cross_encoder=False)
    assert library.default_cut(trees) == load_verifier().threshold != ce.threshold
    policy = SemanticCachePolicy(enabled=True, cross_encoder=True)
    assert library.default_cut(policy) == ce.threshold
    key = library.key(request("How do I cancel my subscription?"), policy)
    assert isinstance(key, Key)
    look = await library.lookup(key, policy)
    await library.put(key, look.vector, Answer(b"{}", None, None))
    same = library.key(request("How do I cancel my subscription"), policy)
    trap = library.key(request("How do I not cancel my subscription?"), policy)
    assert isinstance(same, Key) and isinstance(trap, Key)
    hit = await library.lookup(same, policy)
    assert hit.hit is not None and hit.confidence is not None and hit.confidence >= ce.threshold
    repeat = library.key(request("how can i cancel my subscripton pls"), policy)
    assert isinstance(repeat, Key)
    served = await library.lookup(repeat, policy)  # a trivial edit: no model needed
    assert served.hit is not None and served.confidence == 1.0
    miss = await library.lookup(trap, policy)
    assert miss.hit is None and miss.vetoes == ("edit",)  # a content word added: cache.edits
    unedited = policy.model_copy(update={"edits": False})
    miss = await library.lookup(trap, unedited)
    assert miss.hit is None and miss.vetoes == ("verifier",)


@pytest.mark.asyncio
async def test_a_yes_no_question_of_opposite_stance_is_vetoed_before_the_model(
    ce: CrossEncoder,
) -> None:
    embedder = HashEmbedder()
    anywhere = dataclasses.replace(ce, floor=0.0)
    trees = dataclasses.replace(load_verifier(), floor=-1.0)
    library = SemanticLibrary(
        embedder, InProcessIndex(embedder.dim, 16), verifier=trees, cross_encoder=anywhere
    )
    for policy in (
        SemanticCachePolicy(enabled=True),
        SemanticCachePolicy(enabled=True, cross_encoder=False),
    ):
        key = library.key(request("Is it okay to give a child aspirin?"), policy)
        assert isinstance(key, Key)
        await library.put(
            key, (await library.lookup(key, policy)).vector, Answer(b"{}", None, None)
        )
        flipped = library.key(request("Should I avoid giving a child aspirin?"), policy)
        assert isinstance(flipped, Key)
        look = await library.lookup(flipped, policy.model_copy(update={"verifier_threshold": 0.01}))
        assert look.hit is None and "stance" in look.vetoes


@pytest.mark.asyncio
async def test_a_swapped_order_is_vetoed_before_the_model(ce: CrossEncoder) -> None:
    embedder = HashEmbedder()
    anywhere = dataclasses.replace(ce, floor=0.0)
    library = SemanticLibrary(
        embedder, InProcessIndex(embedder.dim, 16), verifier=load_verifier(), cross_encoder=anywhere
    )
    policy = SemanticCachePolicy(enabled=True, cross_encoder=True)
    key = library.key(request("Book a flight from Paris to Rome"), policy)
    assert isinstance(key, Key)
    await library.put(key, (await library.lookup(key, policy)).vector, Answer(b"{}", None, None))
    swapped = library.key(request("Book a flight from Rome to Paris"), policy)
    assert isinstance(swapped, Key)
    look = await library.lookup(swapped, policy)
    assert look.hit is None and look.vetoes == ("order",)


def test_the_band_skips_the_model_only_where_it_cannot_matter(ce: CrossEncoder) -> None:
    assert not ce.worth_scoring(ce.band_low / 2, ce.threshold)
    assert ce.worth_scoring(0.99, ce.threshold)
    assert ce.decide(0.99, 1.0) == ce.decide(0.99, ce.ce_max)


def test_a_missing_artifact_falls_back_to_the_trees(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tiergate.cache"):
        assert load_cross_encoder(tmp_path / "none.onnx", tmp_path / "none.json") is None
    assert [r for r in caplog.records if "uses the trees" in r.getMessage()]
    embedder = HashEmbedder()
    verifier = load_verifier()
    library = SemanticLibrary(embedder, InProcessIndex(embedder.dim, 4), verifier=verifier)
    policy = SemanticCachePolicy(enabled=True, cross_encoder=True)
    assert library.default_cut(policy) == verifier.threshold
    off = policy.model_copy(update={"cross_encoder": False})
    assert (
        SemanticLibrary(
            embedder, InProcessIndex(embedder.dim, 4), verifier=verifier, cross_encoder=None
        ).default_cut(off)
        == verifier.threshold
    )


def chat(*turns: str) -> Request:
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]
    return Request("t", "a", "v1", messages, {"temperature": 0})


@pytest.mark.asyncio
async def test_the_cross_encoder_path_refuses_another_conversations_chain(ce: CrossEncoder) -> None:
    """With no floor at all (0.0), a chain about another subject is still refused before the
    model runs, and each stored chain is found by its own request although all share the
    question and the context."""
    embedder = HashEmbedder()
    anywhere = dataclasses.replace(ce, floor=0.0)
    library = SemanticLibrary(
        embedder, InProcessIndex(embedder.dim, 64), verifier=load_verifier(), cross_encoder=anywhere
    )
    policy = SemanticCachePolicy(enabled=True)
    tail = ("Can you expand on that?", "Sure.", "What are the risks?")
    topics = ["index funds", "rock climbing", "sourdough", "kayaking", "chess", "jazz"]
    for topic in topics:
        key = library.key(chat(f"How do I get started with {topic}?", "...", *tail), policy)
        assert isinstance(key, Key)
        look = await library.lookup(key, policy)
        await library.put(key, look.vector, Answer(topic.encode(), None, None))
    for topic in topics:
        key = library.key(chat(f"How do I get started with {topic}?", "...", *tail), policy)
        assert isinstance(key, Key)
        found = await library.lookup(key, policy)
        assert found.hit is not None and found.hit.payload["body"] == topic
    other = library.key(chat("How do I get started with pottery?", "...", *tail), policy)
    assert isinstance(other, Key)
    look = await library.lookup(other, policy)
    assert look.hit is None


def test_a_pairs_score_does_not_depend_on_the_pairs_scored_with_it(ce: CrossEncoder) -> None:
    # The int8 model quantises activations per batch: a pair scored beside others moved by up
    # to 0.17 (python -m bench.embedder_batches), enough to cross the cut.
    pair = ("How do I reset my router password?", "How can I reset the password of my router?")
    others = [
        ("Is it safe?", "Is it dangerous?"),
        ("What is the capital of France and why " * 5, "How can I reset the password?"),
    ]
    alone = ce.score_pairs([pair])[0]
    assert ce.score_pairs([others[0], pair, others[1]])[1] == alone
    assert ce.score_pairs([pair, *others])[0] == alone


async def _one_entry_for_the_model(
    ce: CrossEncoder,
) -> tuple[SemanticLibrary, SemanticCachePolicy, Key]:
    """A library holding one question, and a near-repeat of it that (with no edit check) only
    the cross-encoder can decide."""
    embedder = HashEmbedder()
    anywhere = dataclasses.replace(ce, floor=0.0)
    library = SemanticLibrary(
        embedder, InProcessIndex(embedder.dim, 16), verifier=load_verifier(), cross_encoder=anywhere
    )
    policy = SemanticCachePolicy(enabled=True, cross_encoder=True, edits=False)
    key = library.key(request("How do I cancel my subscription?"), policy)
    asked = library.key(request("How do I cancel my subscription"), policy)
    assert isinstance(key, Key) and isinstance(asked, Key)
    await library.put(key, (await library.lookup(key, policy)).vector, Answer(b"{}", None, None))
    return library, policy, asked


@pytest.mark.asyncio
async def test_a_lookup_scores_off_the_event_loop(
    ce: CrossEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pair takes about 2.3 ms: on the loop, 32 lookups at once stalled every other request
    # (python -m bench.semantic_cache --pairs quora: event-loop lag p99 62 ms, 46 ms since).
    import threading

    where: list[str] = []
    real = CrossEncoder.score_pairs

    def recording(self: CrossEncoder, pairs: list[tuple[str, str]]) -> object:
        where.append(threading.current_thread().name)
        return real(self, pairs)

    monkeypatch.setattr(CrossEncoder, "score_pairs", recording)
    library, policy, asked = await _one_entry_for_the_model(ce)
    look = await library.lookup(asked, policy)  # no edit check: the model decides
    assert look.hit is not None
    assert where and all(name.startswith("cross-encoder") for name in where)
    assert threading.current_thread().name not in where


@pytest.mark.asyncio
async def test_a_purge_while_the_model_runs_is_not_served_around(
    ce: CrossEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model runs in its own thread, so a lookup waits there after its search: an entry
    # purged meanwhile must not be served from what the search found before.
    library, policy, asked = await _one_entry_for_the_model(ce)
    assert (await library.lookup(asked, policy)).hit is not None  # served without a purge
    real = CrossEncoder.score

    async def purged_meanwhile(self: CrossEncoder, pairs: list[tuple[str, str]]) -> object:
        assert await library.clear() == 1
        return await real(self, pairs)

    monkeypatch.setattr(CrossEncoder, "score", purged_meanwhile)
    look = await library.lookup(asked, policy)
    assert look.hit is None and look.vetoes[-1] == "purged"


@pytest.mark.asyncio
async def test_a_purge_during_a_remote_search_is_not_served_around(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A remote store's search is waited on too: a purge that ran meanwhile (or still runs)
    # leaves the lookup nothing to serve, on the trees' path as on the model's.
    embedder = HashEmbedder()
    store = InProcessIndex(embedder.dim, 16)
    library = SemanticLibrary(embedder, store, verifier=load_verifier())
    policy = SemanticCachePolicy(enabled=True, cross_encoder=False)
    key = library.key(request("How do I cancel my subscription?"), policy)
    assert isinstance(key, Key)
    await library.put(key, (await library.lookup(key, policy)).vector, Answer(b"{}", None, None))
    assert (await library.lookup(key, policy)).hit is not None
    search = store.search

    async def slow_search(*args: object) -> object:
        found = await search(*args)  # type: ignore[arg-type]
        await library.clear()  # the purge lands while the search's answer is on its way
        return found

    monkeypatch.setattr(store, "search", slow_search)
    look = await library.lookup(key, policy)
    assert look.hit is None and look.vetoes[-1:] == ("purged",)
