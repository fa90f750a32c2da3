"""The social-turn model (cache.social) and where the chatter rules consult it: only for a turn
they refuse for its words, never for what it holds (a digit, a name, a time of day, an answer
to the assistant's question or offer, a decline). The shipped artifact's figures are printed
by ``tiergate train chatter`` and ``tiergate eval cache``; here, its behaviour on turns the
rules alone refuse, and the structure that holds whatever it says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cache.chatter import is_chatter, kept_turns
from cache.embedder import HashEmbedder, ModelEmbedder, load_embedder
from cache.policy import SemanticCachePolicy
from cache.semantic import Key, Request, SemanticLibrary
from cache.social import (
    Judge,
    Place,
    SocialModel,
    features,
    load_social_model,
    read_model,
    write_model,
)
from cache.vectors import InProcessIndex
from gateway.eval.social_train import one_by_one, read_rows, train

# A model that takes every message for social talk: what the rules let through regardless.
EVERYTHING = SocialModel({}, 30.0, {"user": 0.5, "assistant": 0.5}, {})
NOTHING = SocialModel({}, -30.0, {"user": 0.5, "assistant": 0.5}, {})


def test_features_are_normalised() -> None:
    a = features("Heyyyy!! It\u2019s 5pm", "user", "opening")
    b = features("heyy!! it's 7pm", "user", "opening")
    assert a == b
    assert "role:user" in a and "place:opening" in a and "w:heyy" in a and "c:<he" in a
    assert "role:assistant" in features("hi", "assistant", "after_answer")


def test_probability_and_cut() -> None:
    model = SocialModel({"w:thanks": 3.0, "w:allergic": -5.0}, 0.0, {"user": 0.9}, {})
    assert model.probability("thanks", "user", "opening") > 0.95
    assert model.social("thanks", "user", "opening")
    assert not model.social("thanks, allergic", "user", "opening")


def test_artifact_round_trip_is_byte_stable(tmp_path: Path) -> None:
    model = SocialModel({"w:hi": 1.5, "c:<hi": -0.25}, -0.5, {"user": 0.7, "assistant": 0.8}, {})
    first, second = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_model(model, first)
    write_model(read_model(first), second)
    assert first.read_bytes() == second.read_bytes()
    assert read_model(first) == model


@pytest.mark.parametrize(
    "text",
    [
        "thx! my dog is 14 btw",  # a digit
        "hi, I'm Hope",  # a name
        "Good evening!",  # the time of day (a scope of its own: test_semantic.py)
        "hey, I'm the TA",  # a role
        "Thanks! Is it safe for kids?",  # a question after an answer
    ],
)
def test_the_model_never_overrules_what_a_turn_holds(text: str) -> None:
    answered = "after" in text or text.startswith("Thanks")
    assert not is_chatter(text, after_answer=answered, plain=True, learned=EVERYTHING)


def test_after_an_answer_only_when_it_proposes_nothing() -> None:
    remark = "ok thank you very much friend"
    assert not is_chatter(remark, after_answer=True)
    assert is_chatter(remark, after_answer=True, plain=True, learned=EVERYTHING)
    assert not is_chatter(remark, after_answer=True, plain=True, learned=NOTHING)
    for kept in (
        "It's ok, thanks",  # a decline
        "Perfect.",  # praise alone may accept or choose: a thanks is needed
        "omg that worked, thanks",  # how the advice went may decide the next answer
        "That's a relief, thanks!",
    ):
        assert not is_chatter(kept, after_answer=True, plain=True, learned=EVERYTHING), kept
    offer = [
        ("user", "Can I get a late checkout?"),  # a question: never the model's to pass over
        ("assistant", "Late checkout until 2pm is available for $25."),
        ("user", "ok thank you very much friend"),
    ]
    assert kept_turns(offer, learned=EVERYTHING) == offer  # may accept the offer: kept
    plain = [
        ("user", "How do I fix a CORS error in Express?"),
        ("assistant", "Install the cors package and call app.use(cors()) before the routes."),
        ("user", "ok thank you very much friend"),
    ]
    assert kept_turns(plain, learned=EVERYTHING) == plain[:2]
    assert kept_turns(plain) == plain  # the rules alone do not know the words


def test_the_assistants_reply_after_an_answer_is_the_rules_alone() -> None:
    chat = [
        ("user", "My little guy has been throwing up since last night."),
        ("assistant", "Keep him hydrated with small sips of water."),
        ("user", "Thanks!"),
        ("assistant", "Hope your pup feels better soon!"),  # names who: kept
    ]
    assert kept_turns(chat, learned=EVERYTHING) == [*chat[:2], chat[3]]


def test_after_the_assistants_question_nothing_is_chatter() -> None:
    chat = [
        ("user", "Can you help me plan a trip?"),
        ("assistant", "Sure! Where are you flying from?"),
        ("user", "haha ok so basically anywhere works"),
    ]
    assert kept_turns(chat, learned=EVERYTHING) == chat


@pytest.fixture(scope="module")
def int8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelEmbedder]:
    embedder = load_embedder(backend="onnx-int8", cache_dir=tmp_path_factory.mktemp("models"))
    yield embedder
    asyncio.run(embedder.aclose())


def _embed(embedder: Any) -> Callable[[Sequence[str]], Any]:
    return one_by_one(embedder)


@pytest.mark.parametrize(
    ("text", "place", "social"),
    [
        ("ok thank you very much friend", "after_answer", True),
        ("heyyy bestie, whats poppin", "opening", True),
        ("haha you're a legend, thanks mate", "after_answer", True),
        # how the user is or what is around them is no chatter (a red-team pass)
        ("Hi! Long day at work, finally home.", "opening", False),
        ("hey, had a few beers lol", "opening", False),
        ("ugh it's so hot today, hi", "opening", False),
        ("hey, vegan here! what should I cook", "opening", False),
        ("thanks! also I'm pregnant", "after_answer", False),
        ("cool, keep it short pls", "after_answer", False),
        ("answer in spanish from now on", "after_answer", False),
    ],
)
def test_the_shipped_model(int8: ModelEmbedder, text: str, place: Place, social: bool) -> None:
    model = load_social_model()
    assert model is not None and model.head  # the embedding regression ships
    judge = Judge(model)
    assert not judge.social(text, "user", place) and judge.missing == {text}  # no vector yet
    judge.vectors[text] = _embed(int8)([text])[0]
    assert judge.social(text, "user", place) is social
    with pytest.raises(ValueError):
        model.probability(text, "user", place)  # the head needs the embedding


def _chat(*turns: str) -> Request:
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": r, "content": t} for r, t in zip(roles, turns, strict=False)]
    return Request("t", "alias", "v1", messages, {"temperature": 0})


@pytest.mark.asyncio
async def test_the_library_embeds_what_the_model_is_asked(int8: ModelEmbedder) -> None:
    model = load_social_model()
    library = SemanticLibrary(int8, InProcessIndex(int8.dim, 4), social=model)
    rules = SemanticLibrary(int8, InProcessIndex(int8.dim, 4))
    policy = SemanticCachePolicy(enabled=True)
    question = "any easy dinner idea with chicken thighs and rice"
    alone = await library.key(_chat(question), policy)
    greeted = _chat("heyyy bestie, whats poppin", "Hey hey! Not much, you?", question)
    fact = _chat("hey, had a few beers lol", "Ha, sounds like a fun night!", question)
    assert isinstance(alone, Key)
    with_model, without = await library.key(greeted, policy), await rules.key(greeted, policy)
    assert isinstance(with_model, Key) and isinstance(without, Key)
    assert with_model.scope == alone.scope != without.scope  # the model passes the greeting
    beers = await library.key(fact, policy)
    assert isinstance(beers, Key) and beers.scope != alone.scope  # a state is kept
    off = policy.model_copy(update={"chatter_model": False})
    kept = await library.key(greeted, off)
    assert isinstance(kept, Key) and kept.scope == without.scope


@dataclass
class Counting:
    """An embedder that counts its batches."""

    inner: ModelEmbedder
    batches: list[list[str]] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return self.inner.dim

    def fits(self, text: str) -> bool:
        return self.inner.fits(text)

    async def embed(self, texts: list[str]) -> Any:
        self.batches.append(list(texts))
        return await self.inner.embed(texts)

    async def aclose(self) -> None:
        return None


@pytest.mark.asyncio
async def test_one_batch_embeds_every_turn_the_model_is_asked(int8: ModelEmbedder) -> None:
    counting = Counting(int8)
    library = SemanticLibrary(counting, InProcessIndex(int8.dim, 4), social=load_social_model())
    greeting, reply = "heyyy, finally got a minute to myself", "Nice, enjoy the quiet moment!"
    chat = _chat(greeting, reply, "how do i descale a kettle")
    key = await library.key(chat, SemanticCachePolicy(enabled=True))
    assert isinstance(key, Key)
    assert counting.batches == [sorted([greeting, reply])]  # the walk listed both at once
    plain = await library.key(_chat("how do i descale a kettle"), SemanticCachePolicy(enabled=True))
    assert isinstance(plain, Key) and len(counting.batches) == 1  # no turn to ask about


def _rows(tmp_path: Path) -> Path:
    social = ["hi there", "hello!", "thanks so much", "haha nice", "hey hey", "thank you!!"]
    other = ["hey i'm vegan", "hi keep it short", "hello my son is two", "hi in spanish please"]
    tails = ["friend", "pal", "mate", "buddy", "folks", "team", "again", "lol", "all", "bot"]
    rows = [
        {"text": f"{t} {k}", "role": "user", "position": "opening", "social": s}
        for k in tails
        for texts, s in ((social, True), (other, False))
        for t in texts
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert len(read_rows([path])) == len(rows)
    return path


def test_training_is_deterministic_and_calibrated(tmp_path: Path) -> None:
    path = _rows(tmp_path)
    first, card = train([path], target=0.0)
    second, _ = train([path], target=0.0)
    assert first == second and not first.head  # no embedder: the sparse regression alone
    assert card["dev"]["asked"]["user"]["other_taken"] == 0.0  # the cut lets none through
    assert first.social("hi there friend", "user", "opening")
    assert not first.social("hey, my son is vegan", "user", "opening")


def test_training_fits_the_embedding_regression(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    model, card = train([_rows(tmp_path)], target=0.0, embed=_embed(embedder))
    assert len(model.head) == embedder.dim + 2 and card["C"]["head"] is not None
    vector = _embed(embedder)(["hi there friend"])[0]
    assert 0.0 < model.probability("hi there friend", "user", "opening", vector) < 1.0


def test_the_shipped_artifact_is_rebuilt_from_the_shipped_data(
    int8: ModelEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.eval.social_train import train_files

    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # data/chatter is read from the root
    card = train_files(tmp_path / "social.json.gz", embed=_embed(int8))
    rebuilt, shipped = read_model(tmp_path / "social.json.gz"), load_social_model()
    assert shipped is not None
    assert rebuilt.cuts == pytest.approx(shipped.cuts, abs=2e-3)
    names = rebuilt.weights.keys() | shipped.weights.keys()
    gap = max(abs(rebuilt.weights.get(k, 0.0) - shipped.weights.get(k, 0.0)) for k in names)
    assert gap < 1e-3
    assert np.allclose(rebuilt.head, shipped.head, atol=1e-2)
    assert card["dev"]["asked"]["user"]["other_taken"] <= card["target_false_social"]
    assert card["test"]["asked"]["user"]["other"] > 0  # social_turns.jsonl, never fit on
