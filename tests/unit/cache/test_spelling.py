"""Confident spelling corrections before the semantic cache embeds a question (cache.spelling):
a misspelt word, one edit from a common word hundreds of times as frequent and clearly ahead
of any other, is corrected; a word, a name, a contraction, code or an ambiguous slip is left
as typed."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import orjson
import pytest

from cache.embedder import HashEmbedder
from cache.policy import SemanticCachePolicy
from cache.semantic import Answer, Key, Request, SemanticLibrary, make_key
from cache.spelling import corrected
from cache.vectors import InProcessIndex
from cache.verifier import load_verifier
from gateway.eval.spelling_build import MEMBER, build


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        # Near-repeats written by people who never saw the code (data/cache_eval/traps_thirteenth)
        ("how many calories are in a bannana", "how many calories are in a banana"),
        ("whats the captial of canada", "whats the capital of canada"),
        ("how do i stop procastinating", "how do i stop procrastinating"),
        ("what are the side effects of ibuprofin", "what are the side effects of ibuprofen"),
        ("Pasport renewal. Pasport photos?", "Passport renewal. Passport photos?"),  # case kept
        ("pyhton list reverse", "python list reverse"),
        ("What does 'carpe diem' mean to a pupy?", "What does 'carpe diem' mean to a puppy?"),
        ("golden retreiver shedding", "golden retriever shedding"),
    ],
)
def test_a_confident_misspelling_is_corrected(typed: str, meant: str) -> None:
    assert corrected(typed) == meant


@pytest.mark.parametrize(
    "typed",
    [
        "why dont my plants grow",  # a negation written without its apostrophe: never "done"
        "youre right, whats up",  # bare contractions
        "how do I install pipx",  # "pip", "pipe", "pips": no clear winner
        "Whats the difference between a violin and a fidle?",  # "file" or "fiddle": left
        "wich one is better",  # "which" or "with" (the runner-up changes the second letter)
        "is it safe to take melatonin evry night",  # "every" or "very": left
        "x=bannana() and `retrun` and ?q=bannana",  # code and addresses
        "What does carpe diem mean?",  # Latin, frequent enough to be a word: never "care"
        "What is silane used for?",  # a chemical, not "silage": frequent enough to be a word
        "What is graphene?",  # a word more frequent than "grapheme"
        "How do I raise my Quora limit?",  # a name inside a sentence: never "quota"
        "How big is Sedna?",  # and never "Sedona"
        "split a bill on venmo",  # "venom" is not that much more frequent
        "how to use numpy with redis and kubectl",  # nothing one edit away
        "How do I use pprint?",  # an edit of the first two letters: never "print"
        "Is sodium chlorite safe to drink?",  # a word (WordNet): never "chloride"
        "my iPhone and NASA",  # mixed case and acronyms keep their spelling
        "open confg.yaml and set max_retrys",  # file names and identifiers
        "what does pls mean in tmrw's plan",  # the lexicon's shorthand
        "is it a tik or a tick",  # short and ambiguous: "tic", "tin", "tip"
        "Does Qwen3 run on the GPU?",  # joined to a digit
    ],
)
def test_words_names_and_ambiguous_slips_are_left_as_typed(typed: str) -> None:
    assert corrected(typed) == typed


def key(text: str, policy: SemanticCachePolicy) -> Key:
    k = make_key(Request("t", "a", "v", [{"role": "user", "content": text}], {}), policy)
    assert isinstance(k, Key)
    return k


def test_the_key_embeds_the_corrected_question_and_keeps_it_as_typed() -> None:
    policy = SemanticCachePolicy(enabled=True)
    typed = "How many calories are in a bannana?"
    on = key(typed, policy)
    assert on.embedded == ["How many calories are in a banana?"]  # found as spelled
    assert on.text == typed  # judged as typed: the edit check, the guards, the verifiers
    off = key(typed, policy.model_copy(update={"spelling": False}))
    assert off.embedded == [typed]
    assert on.scope == off.scope  # the same entries either way


def follow_up(policy: SemanticCachePolicy) -> Key:
    """A follow-up with a misspelling in its question and in its context."""
    messages = [
        {"role": "user", "content": "whats the captial of canada"},
        {"role": "assistant", "content": "Ottawa."},
        {"role": "user", "content": "and its populaton?"},
    ]
    k = make_key(Request("t", "a", "v", messages, {}), policy)
    assert isinstance(k, Key)
    return k


def test_a_follow_ups_context_is_corrected_too() -> None:
    policy = SemanticCachePolicy(enabled=True)
    k = follow_up(policy)
    assert k.embedded == ["and its population?", "whats the capital of canada"]
    assert (k.text, k.context) == ("and its populaton?", "whats the captial of canada")


def test_the_artifact_is_built_the_same_from_the_same_wheel(tmp_path: Path) -> None:
    bins: list[object] = [{"format": "cB", "version": 1}] + [[] for _ in range(800)]
    bins[1 + 130] = ["the", "and"]  # Zipf 7.70
    bins[1 + 500] = ["banana", "Banana", "café", "b2b", "ok"]  # Zipf 4.00
    bins[1 + 790] = ["bannana"]  # Zipf 1.10
    packed = gzip.compress(msgpack.packb(bins))
    wheel = tmp_path / "wordfreq-3.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MEMBER, packed)
    out, again = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    build(wheel, out, minimum=3)
    build(wheel, again, minimum=3)
    assert out.read_bytes() == again.read_bytes()
    zipf = json.loads(gzip.decompress(out.read_bytes()))["zipf"]
    # lower-case ASCII letters, three or more: no "Banana", "café", "b2b" or "ok"
    assert zipf == {"7.70": "and the", "4.00": "banana", "1.10": "bannana"}


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.msgpack.gz"
    other.write_bytes(gzip.compress(msgpack.packb([{"format": "xx"}, ["the"]])))
    with pytest.raises(ValueError, match="not a wordfreq"):
        build(other, tmp_path / "out.json.gz")
    small = tmp_path / "small.msgpack.gz"
    small.write_bytes(gzip.compress(msgpack.packb([{"format": "cB", "version": 1}, ["the"]])))
    with pytest.raises(ValueError, match="only 1 words"):
        build(small, tmp_path / "out.json.gz")


def answer(text: str) -> Answer:
    return Answer(orjson.dumps({"choices": [{"message": {"content": text}}]}), "m", "t")


def library(verifier: bool) -> SemanticLibrary:
    """HashEmbedder: bag-of-words vectors, so a corrected question meets its entry at 1.0."""
    embedder = HashEmbedder()
    trees = load_verifier() if verifier else None
    return SemanticLibrary(embedder, InProcessIndex(embedder.dim), verifier=trees)


async def stored(lib: SemanticLibrary, policy: SemanticCachePolicy, text: str) -> None:
    k = key(text, policy)
    look = await lib.lookup(k, policy)
    await lib.put(k, look.vector, answer(text))


@pytest.mark.asyncio
@pytest.mark.parametrize("verifier", [True, False])
async def test_the_search_uses_the_corrected_text_and_a_typo_is_served_as_one(
    verifier: bool,
) -> None:
    """HashEmbedder: bag-of-words vectors, so the corrected question meets its entry at 1.0."""
    lib, policy = library(verifier), SemanticCachePolicy(enabled=True, threshold=0.8)
    await stored(lib, policy, "How many calories are in a banana?")
    asked = key("how many calories are in a bannana", policy)
    look = await lib.lookup(asked, policy)
    if verifier:  # the edit check reads the typed texts: a typo, served
        assert look.hit is not None and look.confidence == 1.0
    else:  # no edit check: a score of corrected texts decides nothing
        assert look.hit is None and look.vetoes == ("spelling",)


@pytest.mark.asyncio
@pytest.mark.parametrize("verifier", [True, False])
async def test_a_word_corrected_into_another_is_never_served(verifier: bool) -> None:
    """'reqwest' is searched as 'request' (the same vector here): the typed texts differ in a
    word, so the entry is refused whatever the score."""
    lib, policy = library(verifier), SemanticCachePolicy(enabled=True, threshold=0.8)
    await stored(lib, policy, "How do I use request in Rust?")
    asked = key("How do I use reqwest in Rust?", policy)
    assert asked.embedded == ["How do I use request in Rust?"]
    look = await lib.lookup(asked, policy)
    assert look.hit is None
    assert look.vetoes == ("edit",) if verifier else ("spelling",)
    off = policy.model_copy(update={"spelling": False})
    assert (await lib.lookup(key("How do I use reqwest in Rust?", off), off)).hit is None


class Recording(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def embed(self, texts: list[str]) -> Any:
        self.asked += texts
        return await super().embed(texts)


@pytest.mark.asyncio
async def test_lookup_and_put_embed_the_corrected_question_and_context() -> None:
    embedder = Recording()
    lib = SemanticLibrary(embedder, InProcessIndex(embedder.dim))
    policy = SemanticCachePolicy(enabled=True, threshold=0.8)
    k = follow_up(policy)
    look = await lib.lookup(k, policy)
    await lib.put(k, look.vector, answer("about 41 million"))  # embeds the context again
    context = "whats the capital of canada"
    assert embedder.asked == ["and its population?", context, context]
