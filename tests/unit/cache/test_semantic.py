"""The semantic cache library with the deterministic HashEmbedder: scope, keys, guards, TTL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cache.chatter import is_chatter
from cache.embedder import HashEmbedder
from cache.policy import SemanticCachePolicy
from cache.semantic import (
    Answer,
    Key,
    Request,
    SemanticLibrary,
    make_key,
    open_store,
)
from cache.vectors import InProcessIndex

POLICY = SemanticCachePolicy(enabled=True, threshold=0.8)


def req(content: Any = "How do I reset my password?", **kw: Any) -> Request:
    messages = kw.pop("messages", [{"role": "user", "content": content}])
    params = kw.pop("params", {"model": "fast", "messages": messages, "temperature": 0})
    fields = {"tenant": "t1", "alias": "fast", "rules_version": "v1", **kw}
    return Request(messages=messages, params=params, **fields)


def key(request: Request, policy: SemanticCachePolicy = POLICY) -> Key:
    k = make_key(request, policy)
    assert isinstance(k, Key), k
    return k


def apart(a: Request | Key, b: Request | Key) -> bool:
    """The two conversations can never meet: another scope or another context."""
    ka, kb = (x if isinstance(x, Key) else key(x) for x in (a, b))
    return ka.scope != kb.scope or ka.context != kb.context


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def library(clock: Clock | None = None) -> SemanticLibrary:
    clock = clock or Clock()
    embedder = HashEmbedder()
    return SemanticLibrary(embedder, InProcessIndex(embedder.dim, clock=clock), clock=clock)


def answer(text: str) -> Answer:
    return Answer(orjson.dumps({"choices": [{"message": {"content": text}}]}), "m", "t")


# --- keys and scope --------------------------------------------------------------------------


def test_scope_separates_everything_that_can_change_the_answer() -> None:
    base = key(req()).scope
    system = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "x"}]
    different = [
        req(tenant="t2"),
        req(alias="smart"),
        req(rules_version="v2"),
        req(namespace="other"),
        req(params={"temperature": 0, "max_tokens": 5}),
        req(params={"temperature": 0, "tools": [{"type": "function", "function": {"name": "f"}}]}),
        req(params={"temperature": 0, "response_format": {"type": "json_object"}}),
        req(messages=[*system[:1], {"role": "user", "content": "How do I reset my password?"}]),
    ]
    scopes = [key(r).scope for r in different]
    assert base not in scopes
    assert len(set(scopes)) == len(scopes)


def test_transport_fields_and_whitespace_at_the_ends_do_not_change_the_key() -> None:
    params = {"temperature": 0, "stream": True, "user": "u7", "stream_options": {}}
    a = key(req())
    b = key(req("  How do I reset my password?\n", params={**params}))
    assert (a.scope, a.text) == (b.scope, b.text)
    # A run of spaces inside may carry meaning ("'a  b'.split(' ')"): not cached at all.
    assert make_key(req("What does 'a  b'.split(' ') return?"), POLICY) == "preformatted"


def test_last_turn_mode_puts_earlier_turns_in_the_scope_and_embeds_the_last() -> None:
    last_turn = SemanticCachePolicy(enabled=True, conversation="last_turn")

    def chat(first: str) -> Request:
        turns = [
            {"role": "user", "content": first},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "What is its population?"},
        ]
        return req(messages=turns)

    a = key(chat("Capital of France?"), last_turn)
    b = key(chat("Capital of Germany?"), last_turn)
    assert a.text == b.text == "What is its population?"
    assert a.scope != b.scope
    whole = SemanticCachePolicy(enabled=True, conversation="whole")
    assert "Capital of France?" in key(chat("Capital of France?"), whole).text


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (req(messages=[{"role": "assistant", "content": "hi"}]), "last-message-not-user"),
        (
            req(messages=[{"role": "tool", "content": "42"}, {"role": "user", "content": "ok?"}]),
            "tools-or-media",
        ),
        (req([{"type": "image_url", "image_url": {"url": "x"}}]), "tools-or-media"),
        (req("x" * 3000), "empty-or-too-long"),
        (req(""), "empty-or-too-long"),
    ],
)
def test_what_is_not_semantically_cached(request_: Request, reason: str) -> None:
    assert make_key(request_, POLICY) == reason


def test_long_conversations_are_cached_only_in_context_mode() -> None:
    long = req(messages=[{"role": "user", "content": f"q{i}"} for i in range(5)])
    last_turn = SemanticCachePolicy(enabled=True, conversation="last_turn")
    assert make_key(long, last_turn) == "too-many-turns"
    assert key(long).context == "q3"


def test_text_parts_are_joined() -> None:
    parts = [{"type": "text", "text": "How do I"}, {"type": "text", "text": "reset it?"}]
    assert key(req(parts)).text == "How do I reset it?"


# --- lookups ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_stored_answer_is_found_again_and_only_in_its_scope() -> None:
    lib = library()
    k = key(req())
    first = await lib.lookup(k, POLICY)
    assert first.hit is None
    await lib.put(k, first.vector, answer("Click 'Forgot password'."))
    again = await lib.lookup(key(req("how do I reset my password")), POLICY)
    assert again.hit is not None and again.similarity is not None and again.similarity > 0.95
    assert b"Forgot password" in str(again.hit.payload["body"]).encode()
    assert (await lib.lookup(key(req(tenant="t2")), POLICY)).hit is None


@pytest.mark.asyncio
async def test_guards_veto_a_near_miss_the_threshold_lets_through() -> None:
    lib = library()
    policy = SemanticCachePolicy(enabled=True, threshold=0.5)
    k = key(req("Cancel my subscription"), policy)
    await lib.put(k, (await lib.lookup(k, policy)).vector, answer("Cancelled."))
    trap = key(req("Don't cancel my subscription"), policy)
    vetoed = await lib.lookup(trap, policy)
    assert vetoed.hit is None and vetoed.vetoes == ("negation",)
    unguarded = policy.model_copy(update={"guards": False})
    assert (await lib.lookup(trap, unguarded)).hit is not None


@pytest.mark.asyncio
async def test_below_the_threshold_is_a_miss() -> None:
    lib = library()
    k = key(req("How do I reset my password?"))
    await lib.put(k, (await lib.lookup(k, POLICY)).vector, answer("..."))
    assert (await lib.lookup(key(req("What is the capital of France?")), POLICY)).hit is None


@pytest.mark.asyncio
async def test_entries_older_than_the_alias_ttl_are_not_served() -> None:
    clock = Clock()
    lib = library(clock)
    policy = SemanticCachePolicy(enabled=True, ttl_s=60)
    k = key(req(), policy)
    await lib.put(k, (await lib.lookup(k, policy)).vector, answer("..."))
    clock.now += 59
    assert (await lib.lookup(k, policy)).hit is not None
    clock.now += 2
    assert (await lib.lookup(k, policy)).hit is None


@pytest.mark.asyncio
async def test_storing_the_same_question_twice_keeps_one_entry() -> None:
    lib = library()
    k = key(req())
    vector = (await lib.lookup(k, POLICY)).vector
    await lib.put(k, vector, answer("one"))
    await lib.put(k, vector, answer("two"))
    assert await lib.store.count() == 1


@pytest.mark.asyncio
async def test_purge_by_tenant() -> None:
    lib = library()
    for tenant in ("t1", "t2"):
        k = key(req(tenant=tenant))
        await lib.put(k, (await lib.lookup(k, POLICY)).vector, answer(tenant))
    assert await lib.purge(tenant="t1") == 1
    assert (await lib.lookup(key(req(tenant="t1")), POLICY)).hit is None
    assert (await lib.lookup(key(req(tenant="t2")), POLICY)).hit is not None
    assert await lib.purge() == 0  # no filter: nothing


@pytest.mark.asyncio
async def test_open_store_picks_the_implementation(tmp_path: Any) -> None:
    assert isinstance(open_store(8, None, tmp_path / "s.npz"), InProcessIndex)
    qdrant = open_store(8, ":memory:", None)
    assert type(qdrant).__name__ == "QdrantStore"
    await qdrant.aclose()
    edge = open_store(8, f"edge:{tmp_path / 'edge'}", None)
    assert type(edge).__name__ == "EdgeStore"
    await edge.aclose()


# --- multi-turn: the context is checked separately ------------------------------------------


def chat(*turns: str) -> Request:
    roles = ("user", "assistant")
    return req(messages=[{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)])


async def stored(lib: SemanticLibrary, request: Request) -> None:
    k = key(request)
    found = await lib.lookup(k, POLICY)
    await lib.put(k, found.vector, answer("about 68 million"), found.context_vector)


@pytest.mark.asyncio
async def test_a_follow_up_hits_with_the_same_context_even_after_chatter() -> None:
    lib = library()
    await stored(lib, chat("What is the population of France?", "68 million.", "And its capital?"))
    later = chat(
        "Hi there!",
        "Hello! How can I help you today?",
        "What is the population of France?",
        "68 million.",
        "and its capital?",
    )
    found = await lib.lookup(key(later), POLICY)
    assert found.hit is not None


@pytest.mark.asyncio
async def test_a_changed_context_misses() -> None:
    lib = library()
    await stored(lib, chat("What is the population of France?", "68 million.", "And its capital?"))
    other = chat("What is the population of Germany?", "84 million.", "And its capital?")
    found = await lib.lookup(key(other), POLICY)
    assert found.hit is None


@pytest.mark.asyncio
async def test_a_follow_up_never_meets_a_standalone_question() -> None:
    lib = library()
    await stored(lib, req("And its capital?"))
    follow = chat("What is the population of France?", "68 million.", "And its capital?")
    assert key(follow).scope != key(req("And its capital?")).scope
    assert (await lib.lookup(key(follow), POLICY)).hit is None


FRANCE_GDP = ("Tell me about France.", "France is ...", "What about its GDP?", "2.8 trillion.")


@pytest.mark.asyncio
async def test_a_follow_up_to_a_follow_up_misses_when_the_first_question_differs() -> None:
    """The context ("What about its GDP?") is identical; only the turn before it tells the two
    chains apart (before the fifth session this was served)."""
    lib = library()
    await stored(lib, chat(*FRANCE_GDP, "And in 2023?"))
    germany = chat("Tell me about Germany.", "Germany is ...", *FRANCE_GDP[2:], "And in 2023?")
    found = await lib.lookup(key(germany), POLICY)
    assert found.hit is None


@pytest.mark.asyncio
async def test_a_chain_hits_with_the_same_earlier_turns_and_chatter_around_them() -> None:
    lib = library()
    await stored(lib, chat(*FRANCE_GDP, "And in 2023?"))
    chattier = chat(
        "Hi there!",  # chatter before the conversation
        "Hello! How can I help?",
        "Tell me about France",  # the final stop does not matter
        "France is ...",
        "Thanks!",  # chatter between the turns
        "You're welcome.",
        *FRANCE_GDP[2:],
        "And in 2023?",
    )
    assert (await lib.lookup(key(chattier), POLICY)).hit is not None
    shouted = chat("Tell me about FRANCE.", "France is ...", *FRANCE_GDP[2:], "And in 2023?")
    assert (await lib.lookup(key(shouted), POLICY)).hit is None  # case is kept: US is not us


@pytest.mark.asyncio
async def test_an_earlier_fact_the_entry_did_not_have_misses() -> None:
    lib = library()
    await stored(lib, chat("I have a sinus infection.", "Sorry to hear.", "What should I take?"))
    allergic = chat(
        "I'm allergic to penicillin.",
        "Noted.",
        "I have a sinus infection.",
        "Sorry to hear.",
        "What should I take?",
    )
    found = await lib.lookup(key(allergic), POLICY)
    assert found.hit is None


@pytest.mark.asyncio
async def test_an_earlier_instruction_the_entry_did_not_have_misses() -> None:
    lib = library()
    await stored(lib, chat(*FRANCE_GDP, "And in 2023?"))
    for instruction in ("Answer in Spanish from now on.", "Can you keep your answers short?"):
        spanish = chat(instruction, "Sure.", *FRANCE_GDP, "And in 2023?")
        found = await lib.lookup(key(spanish), POLICY)
        assert found.hit is None


@pytest.mark.asyncio
async def test_a_three_level_chain_compares_every_earlier_turn() -> None:
    lib = library()
    tail = ("What about its GDP?", "...", "And per person?", "...", "And in 2023?")
    await stored(lib, chat("Tell me about France.", "...", *tail))
    found = await lib.lookup(key(chat("Tell me about Germany.", "...", *tail)), POLICY)
    assert found.hit is None
    assert (await lib.lookup(key(chat("Tell me about France.", "...", *tail)), POLICY)).hit


@pytest.mark.asyncio
async def test_chains_that_differ_only_in_their_first_question_each_find_their_own() -> None:
    """Eight entries share the question and the context: the one whose earlier turns match is
    found although the store's nearest entries are the other seven."""
    lib = library()
    topics = [
        "index funds",
        "rock climbing",
        "sourdough",
        "chess",
        "kayaking",
        "Rust",
        "yoga",
        "jazz",
    ]

    def chain(topic: str) -> Request:
        return chat(
            f"How do I get started with {topic}?",
            "...",
            "Can you expand on that?",
            "...",
            "What are the risks?",
        )

    for topic in topics:
        k = key(chain(topic))
        await lib.put(k, (await lib.lookup(k, POLICY)).vector, answer(topic))
    for topic in topics:
        found = await lib.lookup(key(chain(topic)), POLICY)
        assert found.hit is not None and topic in str(found.hit.payload["body"])


def test_up_to_64_earlier_turns_are_kept() -> None:
    def turns(n: int) -> Request:
        return chat(*[t for i in range(n) for t in (f"Question number {i}", "...")], "And then?")

    users = [d for d in key(turns(65)).earlier if not d.startswith("a:") and d != "context"]
    assert len(users) == 64  # 65 user turns before the last: the context and 64 earlier ones
    assert make_key(turns(66), POLICY) == "too-many-turns"


@pytest.mark.asyncio
async def test_a_request_with_less_history_than_the_entry_misses() -> None:
    lib = library()
    await stored(lib, chat(*FRANCE_GDP, "And in 2023?"))
    shorter = chat(*FRANCE_GDP[2:], "And in 2023?")  # "its" refers to nothing the entry knew
    found = await lib.lookup(key(shorter), POLICY)
    assert found.hit is None


@pytest.mark.asyncio
async def test_without_the_chain_rule_only_the_context_is_compared() -> None:
    """follow_up_chain: false trades the deep-chain check for chatter on either side: the
    entry's earlier exchange no longer has to end the request's, and another subject's chain
    with the same two follow-ups is served (the risk docs/caching.md states)."""
    lib, loose = library(), POLICY.model_copy(update={"follow_up_chain": False})
    entry = chat("I'm working on a project.", "Great.", *FRANCE_GDP, "And in 2023?")
    k = key(entry, loose)
    assert k.earlier == () and k.scope != key(entry).scope
    await lib.put(k, (await lib.lookup(k, loose)).vector, answer("3.0 trillion"))
    other_chatter = chat("Keep it short.", "Sure.", *FRANCE_GDP, "And in 2023?")
    assert (await lib.lookup(key(other_chatter, loose), loose)).hit is not None
    germany = chat("Tell me about Germany.", "Germany is ...", *FRANCE_GDP[2:], "And in 2023?")
    assert (await lib.lookup(key(germany, loose), loose)).hit is not None
    assert (await lib.lookup(key(other_chatter), POLICY)).hit is None  # the default: a miss


def test_chatter_is_not_the_context() -> None:
    k = key(
        chat("What is the population of France?", "68 million.", "Thanks!", "Sure!", "And Spain?")
    )
    assert k.context == "What is the population of France?"
    # The context's place, then the assistant's "68 million." and "Sure!" (after a chatter turn,
    # "Sure!" is the assistant's social reply only when it is social talk on its side: it is).
    assert k.earlier[0] == "context"
    assert all(d.startswith("a:") for d in k.earlier[1:])
    assert key(chat("Hi!", "Hello!", "What is the capital of France?")).context == ""


def test_a_reply_to_the_assistants_question_is_kept_with_the_question() -> None:
    assert is_chatter("Thanks!") and not is_chatter("Thanks!", after_question=True)
    k = key(chat("Plan a workout.", "Sure. Shall I add cardio?", "Great", "Done.", "For a week?"))
    assert k.context == "Shall I add cardio?\nGreat"
    jointly = chat("Help with my taxes.", "Are you filing jointly?", "yes", "OK.", "My deduction?")
    single = chat("Help with my taxes.", "Are you filing as single?", "yes", "OK.", "My deduction?")
    assert key(jointly).context != key(single).context


@pytest.mark.asyncio
async def test_a_follow_up_after_a_question_about_other_details_misses() -> None:
    lib = library()
    await stored(lib, chat("Do you ship to Canada?", "Yes, we do.", "And to Mexico?"))
    priced = chat("Do you ship to Canada?", "Yes, we do.", "How much?", "$15.", "And to Mexico?")
    assert not is_chatter("How much?")
    assert (await lib.lookup(key(priced), POLICY)).hit is None


def test_what_an_assistant_said_first_and_message_names_are_part_of_the_scope() -> None:
    def greeted(plan: str) -> Request:
        return req(
            messages=[
                {"role": "assistant", "content": f"Hi! I see you're looking at the {plan} plan."},
                {"role": "user", "content": "How much does it cost per month?"},
            ]
        )

    assert key(greeted("Pro")).scope != key(greeted("Basic")).scope

    def named(name: str) -> Request:
        return req(messages=[{"role": "user", "name": name, "content": "What is my name?"}])

    assert key(named("Alice")).scope != key(named("Bob")).scope
    assert key(named("Alice")).scope == key(named("Alice")).scope


@pytest.mark.parametrize(
    "text",
    [
        "What does this print?\n\nfor i in range(3):\n    print(i)",
        "Fix this:\n```\nx = 1\n```",
    ],
)
def test_code_is_not_semantically_cached(text: str) -> None:
    assert make_key(req(text), POLICY) == "preformatted"


@pytest.mark.asyncio
async def test_a_context_with_two_names_swapped_misses() -> None:
    lib = library()
    await stored(
        lib, chat("I'm flying from Paris to Rome next month.", "Nice.", "Do I need a visa?")
    )
    swapped = chat("I'm flying from Rome to Paris next month.", "Nice.", "Do I need a visa?")
    found = await lib.lookup(key(swapped), POLICY)
    assert found.hit is None


class RatesByText:
    """A stand-in verifier: the probability is looked up by the stored question's second word."""

    floor, threshold = 0.0, 0.5

    def __init__(self, by_word: dict[str, float]) -> None:
        self.by = by_word

    def probability(self, asked: Any, stored: Any, cosine: float) -> float:
        return self.by.get(stored.words[1] if len(stored.words) > 1 else "", 0.0)


@pytest.mark.asyncio
async def test_the_verifier_serves_the_candidate_it_rates_highest_not_the_most_similar() -> None:
    embedder = HashEmbedder()
    verifier = RatesByText({"do": 0.6, "can": 0.9, "is": 0.3})
    lib = SemanticLibrary(embedder, InProcessIndex(embedder.dim), verifier=verifier)  # type: ignore[arg-type]
    policy = SemanticCachePolicy(enabled=True, edits=False)  # the verifier alone decides
    for text in ("how do I reset my password", "How can I reset my password?", "what is rain"):
        k = key(req(text), policy)
        await lib.put(k, (await lib.lookup(k, policy)).vector, answer(text))
    found = await lib.lookup(key(req("how do I reset my password"), policy), policy)
    assert found.hit is not None and found.hit.payload["text"] == "How can I reset my password?"
    assert found.confidence == 0.9  # the identical entry was more similar, and rated 0.6
    refused = await lib.lookup(key(req("how do I reset my password"), policy), policy, cut=0.95)
    assert refused.hit is None and refused.nearest_p == 0.9  # the sample a bound would take


@pytest.mark.asyncio
async def test_the_edit_check_serves_a_repeat_and_refuses_a_changed_word() -> None:
    embedder = HashEmbedder()
    verifier = RatesByText({"do": 0.0, "are": 1.0})  # refuses the repeat, accepts the trap
    lib = SemanticLibrary(embedder, InProcessIndex(embedder.dim), verifier=verifier)  # type: ignore[arg-type]
    policy = SemanticCachePolicy(enabled=True)
    for text in ("How do I reset my password?", "What are the side effects of ibuprofen?"):
        k = key(req(text), policy)
        await lib.put(k, (await lib.lookup(k, policy)).vector, answer(text))
    repeat = await lib.lookup(key(req("how can i reset my pasword pls"), policy), policy)
    assert repeat.hit is not None and repeat.confidence == 1.0
    trap = await lib.lookup(key(req("What are the side effects of aspirin?"), policy), policy)
    assert trap.hit is None and "edit" in trap.vetoes
    off = policy.model_copy(update={"edits": False})  # the stand-in verifier decides alone
    served = (await lib.lookup(key(req("how can i reset my pasword pls"), off), off)).hit
    assert served is None or "password" not in str(served.payload["text"])
    served = (await lib.lookup(key(req("What are the side effects of aspirin?"), off), off)).hit
    assert served is not None and "ibuprofen" in str(served.payload["text"])


def test_a_pinned_route_is_part_of_the_scope() -> None:
    assert key(req(route="tier=big")).scope != key(req()).scope
    assert key(req(route="tier=big")).scope == key(req(route="tier=big")).scope


@pytest.mark.parametrize(
    ("text", "cached"),
    [
        ("Wie überweise ich Geld auf PayPal?", False),
        ("¿Debo comer antes de entrenar?", False),
        ("Le petit-déjeuner est-il inclus ?", False),
        ("What is the meaning of de rien in French?", True),
        ("How did Steve Jobs die?", True),  # "die" is German too
        ("python list sort", True),  # keywords: neither language's function words
    ],
)
def test_only_english_is_semantically_cached(text: str, cached: bool) -> None:
    """The model, the verifier and the guards know English: another language is left to the
    exact cache."""
    assert (make_key(req(text), POLICY) != "not-english") is cached


def test_what_the_assistant_said_is_part_of_the_scope_unless_it_is_chatter() -> None:
    """Second red-team pass: the question a last "Yes." answers, an offer accepted before the
    question, a greeting that names a plan after the user's "Hi there!"."""
    upgrade = chat("I need help with my account.", "Would you like to upgrade to Pro?", "Yes.")
    cancel = chat("I need help with my account.", "Would you like to cancel your account?", "Yes.")
    assert key(upgrade).scope != key(cancel).scope
    offer = ("I want to cancel.", "I can offer you 3 months at half price.")
    offered = chat(*offer, "Great!", "Done.", "What will I pay?")
    declined = chat(*offer, "No thanks.", "OK, cancelled.", "What will I pay?")
    silent = chat(*offer, "What will I pay?")
    assert is_chatter("Great!") and not is_chatter("Great!", after_question=True)
    assert key(offered).scope != key(declined).scope  # the offer's answer is in the scope
    assert key(offered).scope != key(silent).scope
    pro = chat("Hi there!", "Welcome! You're looking at the Pro plan.", "How much is it?")
    basic = chat("Hi there!", "Welcome! You're looking at the Basic plan.", "How much is it?")
    assert key(pro).scope != key(basic).scope
    greeted = chat("Hi there!", "Hello! How can I help you today?", "How much is the Pro plan?")
    assert key(greeted).scope == key(req("How much is the Pro plan?")).scope  # chatter both sides


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("What does x == y do in JavaScript?", "preformatted"),
        ("What does 2>&1 mean in bash?", "preformatted"),
        ("Is a !== b the same as a != b?", "preformatted"),
        ('What does echo "a    b" print?', "preformatted"),
        ("Run this:\r\n  ls -la", "preformatted"),
        ("What does the C# operator ?? do?", "preformatted"),  # eighth session
        ("What does the C# operator ?. do?", "preformatted"),
        ("Is user?.name safe in TypeScript?", "preformatted"),
        ("What does std::move do?", "preformatted"),
        ("When is p->next null?", "preformatted"),
        ("What does 2**10 give in Python?", "preformatted"),
        ("What does x += 1 do?", "preformatted"),
        ("Как перевести деньги на PayPal?", "not-english"),
        ("如何把钱转到PayPal", "not-english"),
        ("Is het ontbijt inbegrepen?", "not-english"),
        ("Ska jag äta före träningen?", "not-english"),
    ],
)
def test_second_pass_texts_are_left_to_the_exact_cache(text: str, reason: str) -> None:
    assert make_key(req(text), POLICY) == reason


@pytest.mark.parametrize(
    "text",
    ["Who were the Việt Minh?", "And per person?", "Hello.  How are you?", "Is 5 > 3?",
     "wait, what?? why is my wifi so slow", "Is it a 9-to-5 job... or not?", "Really?!"],
)  # fmt: skip
def test_english_with_accents_or_spacing_is_still_cached(text: str) -> None:
    assert isinstance(make_key(req(text), POLICY), Key)


def test_repeated_exclamation_marks_are_not_code() -> None:
    assert isinstance(make_key(req("How do I reset my password!!"), POLICY), Key)
    assert make_key(req("Why is a != b here?"), POLICY) == "preformatted"


@pytest.mark.parametrize(
    "question",
    [
        "Are you filing jointly? \U0001f642",
        "**Are you filing jointly?**",
        "Are you filing jointly?\nBest, the bot",
        "I can offer you 3 months at half price.",
        "Would you like the yearly plan. It is cheaper.",
    ],
)
def test_after_a_question_or_an_offer_nothing_is_chatter(question: str) -> None:
    jointly = chat("Help with my taxes.", question, "Great!", "Got it!", "My deduction?")
    silent = chat("Help with my taxes.", question, "My deduction?")
    assert apart(jointly, silent)


@pytest.mark.parametrize(
    "offer",
    [
        "Let me know if you\u2019d like me to turn on autopay for it.",  # a curly apostrophe
        "Shall I book the first free slot for you? It's Mon. at 9 a.m. with Dr. Patel.",
        "We can offer you 3 months at half price.",
        "I can waive the fee this once.",
        "Please confirm the new address.",
    ],
)
def test_an_answer_to_an_offer_is_never_chatter(offer: str) -> None:
    accepted = chat("Help with my bill.", offer, "Perfect, thanks!", "You got it!", "What now?")
    declined = chat("Help with my bill.", offer, "That's okay, thanks!", "No problem!", "What now?")
    assert apart(accepted, declined)


def test_the_offer_holds_over_a_second_message_on_either_side() -> None:
    def said(*turns: tuple[str, str]) -> Key:
        messages = [{"role": r, "content": c} for r, c in turns]
        return key(req(messages=messages))

    start = (("user", "Help with my bill."), ("assistant", "Shall I waive the fee?"))
    smiley = ("assistant", "\U0001f60a")
    end = (("assistant", "Done."), ("user", "What now?"))
    took = said(*start, smiley, ("user", "Perfect, thanks!"), *end)
    left = said(*start, smiley, ("user", "That's okay, thanks!"), *end)
    assert apart(took, left)
    took = said(*start, ("user", "Oh wow"), ("user", "Perfect, thanks!"), *end)
    left = said(*start, ("user", "Oh wow"), ("user", "That's okay, thanks!"), *end)
    assert apart(took, left)


def test_after_a_real_question_the_assistants_yes_is_kept() -> None:
    yes = chat("Should I lock my rate in now?", "Absolutely!", "So what should I do this week?")
    no = chat("Should I lock my rate in now?", "No rush!", "So what should I do this week?")
    assert key(yes).scope != key(no).scope


def test_a_greeting_that_tells_the_time_is_never_passed_over() -> None:
    evening = chat("Good evening!", "Good evening! How can I help?", "Is the pharmacy open?")
    morning = chat("Good morning!", "Good morning! How can I help?", "Is the pharmacy open?")
    assert key(evening).scope != key(morning).scope
    hello = chat("Hello!", "Hello! How can I help?", "How do I descale my kettle?")
    assert key(hello).scope == key(req("How do I descale my kettle?")).scope


def test_a_greetings_how_can_i_help_does_not_make_the_question_an_answer() -> None:
    greeted = chat("Hi!", "Hello! How can I help?", "Visa for Japan?", "None needed.", "How long?")
    plain = chat("Visa for Japan?", "None needed.", "How long?")
    assert (key(greeted).scope, key(greeted).context) == (key(plain).scope, key(plain).context)


@pytest.mark.parametrize(
    ("said", "reply"),
    [
        # A third red-team pass: a choice or a confirmation in words no offer detector knows.
        ("I've prepared the cancellation. Reply with OK to confirm.", "OK"),
        ("Pick a sign-off: Cheers, Thanks again, or Take care.", "Take care!"),
        ("Unplug it for a minute, then let me know once you're done.", "Ok, I'm done!"),
        ("I'll schedule the payment for the 1st of each month by default.", "Perfect, thanks!"),
        ("I'm happy to make it gluten-free too.", "Oh lovely, thanks!"),
    ],
)
def test_after_an_answer_only_thanks_or_understanding_is_chatter(said: str, reply: str) -> None:
    answered = chat("Help me with this.", said, reply, "My pleasure!", "What now?")
    thanked = chat("Help me with this.", said, "Thanks!", "My pleasure!", "What now?")
    assert apart(answered, thanked)
    assert is_chatter("Got it, that helps, thanks!", after_answer=True)
    assert not is_chatter("Perfect, thanks!", after_answer=True)


@pytest.mark.parametrize(
    ("reaction", "reply"),
    [
        ("Perfect, thanks!", "You're welcome!"),
        ("Oh nice, good to know.", "Glad it helps!"),
        ("ok cool, thx", "No problem!"),
        ("Great explanation, thank you.", "Anytime!"),
    ],
)
def test_after_a_plain_answer_social_talk_is_passed_over(reaction: str, reply: str) -> None:
    said = "Basil grows well in six hours of sun, unless the soil stays wet for days."
    reacted = chat("How do I grow basil?", said, reaction, reply, "And indoors?")
    straight = chat("How do I grow basil?", said, "And indoors?")
    assert not apart(reacted, straight)


@pytest.mark.parametrize(
    "said",
    [
        "Basil likes sun. I'll add a watering schedule to your plan.",  # about to act
        "Basil likes sun; I've drafted a planting calendar for you.",  # done, to be approved
        "Basil likes sun. I'm assuming a balcony garden here.",  # an assumption
        "Basil likes sun. Let me know once it's potted.",  # asks to report back
    ],
)
def test_after_an_answer_that_asks_something_social_talk_is_kept(said: str) -> None:
    reacted = chat("How do I grow basil?", said, "Perfect, thanks!", "Anytime!", "And indoors?")
    thanked = chat("How do I grow basil?", said, "Thanks!", "Anytime!", "And indoors?")
    assert apart(reacted, thanked)


def test_a_question_about_the_conversations_own_messages_passes_nothing_over() -> None:
    said = "Basil grows well in six hours of sun, unless the soil stays wet for days."
    thanked = chat("How do I grow basil?", said, "Thanks!", "Sure!", "Translate my last message.")
    straight = chat("How do I grow basil?", said, "Translate my last message.")
    assert apart(thanked, straight)


@pytest.mark.asyncio
async def test_a_short_reply_to_a_question_is_matched_only_word_for_word() -> None:
    lib = library()
    offer = "A technician on Thursday or a new router by Monday: which works better for you?"
    await stored(lib, chat("My internet keeps dropping.", offer, "ok", "Great.", "What now?"))
    found = await lib.lookup(
        key(chat("My internet keeps dropping.", offer, "alright", "Great.", "What now?")), POLICY
    )
    assert found.hit is None and "context" in found.vetoes
    same = await lib.lookup(
        key(chat("My internet keeps dropping.", offer, "ok", "Great.", "What now?")), POLICY
    )
    assert same.hit is not None


def test_a_turn_that_repeats_the_answers_words_picks_one_of_them() -> None:
    said = "Sign-offs people like: Cheers, Best wishes, or Take care."
    picked = chat("Help me end my email.", said, "Take care!", "Lovely!", "And the greeting?")
    thanked = chat("Help me end my email.", said, "Thanks!", "Lovely!", "And the greeting?")
    assert apart(picked, thanked)


@pytest.mark.parametrize("decline", ["No thanks, I'm good.", "Nah, that's fine.", "That's okay!"])
def test_a_decline_is_never_passed_over(decline: str) -> None:
    said = "Basil likes six hours of sun and soil that dries out between waterings."
    declined = chat("How do I grow basil?", said, decline, "Sure!", "And indoors?")
    straight = chat("How do I grow basil?", said, "And indoors?")
    assert apart(declined, straight)


def test_the_order_of_kept_turns_is_part_of_the_key() -> None:
    m1, m2, m3 = "The MacBook Pro 14 is $1,999.", "Another is the Dell XPS 15.", "Both ship fast."
    first = chat("Suggest a laptop.", m1, "Thanks!", m2, "That one sounds perfect.", m3, "Charger?")
    second = chat(
        "Suggest a laptop.", m1, "That one sounds perfect.", m2, "Thanks!", m3, "Charger?"
    )
    assert key(first).scope != key(second).scope
