"""Which turns of a conversation are chatter (cache.chatter.is_chatter): social talk only,
never a fact, a choice, an instruction or a name, whatever words dress it (three red-team
passes). How chatter shapes the key is tested in test_semantic.py."""

from __future__ import annotations

import re

import pytest

from cache.chatter import is_chatter, kept_turns, without_leads
from cache.embedder import HashEmbedder
from cache.policy import SemanticCachePolicy
from cache.semantic import Answer, Key, Request, SemanticLibrary, make_key
from cache.vectors import InProcessIndex


@pytest.mark.parametrize(
    ("text", "chatter"),
    [
        ("Hi!", True),
        ("Thanks, that helps a lot.", True),
        ("Thanks a lot!", True),
        ("Great, thanks", True),  # an offer it accepts is an assistant message: in the scope
        ("Good morning.", False),  # the time of day: "Is the pharmacy still open?"
        ("Is that good?", False),
        ("yes", False),  # an answer to the assistant's question carries meaning
        ("Thanks! And what about Spain?", False),
        ("", False),
        ("Morning.", False),
        ("ok", True),  # as "great"; after a question of the assistant's it is kept (below)
        ("10k", False),
        ("thanks, 3", False),
        ("Thanks! 大阪は?", False),
        ("Thank you for your help yesterday!", True),  # thanks for help given: no subject
        ("Hello, hope you're doing well.", True),
        ("That was really useful, thanks.", True),
        ("Thanks for the tip about Spain.", False),  # names a subject
        ("I'm working on a school project.", False),  # a fact about the user
        ("Please keep it short.", False),  # an instruction
        ("How's it going with the visa?", False),
        ("hey, how's your day been?", True),
        ("Okay, that's clear.", True),
        ("Happy to help! What's on your mind today?", True),  # the assistant's side
        ("How much?", False),  # a question
        ("I'm 62.", False),  # a fact (a number)
        ("I'm pregnant, by the way.", False),
        ("Reply in Spanish please.", False),
        ("No thanks.", False),
        ("Thanks, I'm vegan.", False),
        ("Got it, that's useful context.", False),  # "context" is no social word: kept
        ("thanks!!", True),  # emphasis, not an operator (make_key keeps it cacheable)
        ("heyyy, hope your day\u2019s off to a good start", True),  # stretched, a curly quote
        ("hope your week\u2019s off to a good start", False),  # a weekday, not the weekend
        ("happy new year!! 🎆", False),  # a date: "Are banks open today?" depends on it
        ("Not much, ready when you are. Take your time.", False),  # "Not much." answers
        ("Not much left in stock, take your time.", False),
        ("Sorry to hear that, hope it gets better!", True),  # the assistant's side
        ("hope the pills work well", False),  # a wish with a subject in it
        ("I'm here for a week.", False),  # a fact made of mostly social words
        ("hey, vegan here!", False),
        ("hi from Toronto :)", False),
        ("cool, keep it short pls", False),
        ("yesss", False),  # stretched "yes" is still an answer
        ("Namaste 🙏", False),  # a greeting that names a language or a place
        ("Good morning to ya!", False),
        ("Hola, I'm in Mexico.", False),
        ("hey, hope ur having a great day", True),
        ("hey, hope ur having a gr8 day", False),  # a digit
        ("Anyone there?", True),
        ("What's happening?", False),  # a question from the user; a social one from the assistant
        ("Ok so, random one.", True),
        ("Sorry it took me so long to get back to this.", True),
        ("Sorry, I meant the cheaper one.", False),
    ],
)
def test_what_counts_as_chatter(text: str, chatter: bool) -> None:
    assert is_chatter(text) is chatter


@pytest.mark.parametrize(
    "text",
    [
        # A red-team pass (sixth session): facts, choices and instructions dressed as chatter.
        "thanks! I'm \U0001f930",  # pregnant, as an emoji
        "\U0001f6ab\U0001f95c for me, thanks",  # no peanuts
        "In \u2103, thanks!",
        "$ is fine",
        "I'm in the U.K., hi!",
        "I'm in the U\u00adK",  # a soft hyphen
        "A, thanks!",
        "M is fine",
        "(ii) it is, thanks!",
        "Matte, thanks!",
        "Say it in kind words",
        "It's for a friend.",
        "I'm here with the guys",
        "It's morning here",
        "That's me!",
        "I'm not at all fine",
        "I'm good, thanks!",
        "Later, thanks",
        "Absolutely!",
        "Happy Friday!",
        "G'day mate!",
    ],
)
def test_red_team_texts_are_not_chatter(text: str) -> None:
    assert not is_chatter(text)


def test_the_assistants_yes_words_are_social_only_on_its_side() -> None:
    assert is_chatter("Of course, what's your question?", assistant=True)
    assert not is_chatter("Of course")  # a user's "yes"


def test_no_chatter_phrase_matches_nothing() -> None:
    """A stray "|" or an all-optional alternative would match the empty string everywhere."""
    from cache.lexicon import CHATTER_ASSISTANT_PHRASE_LIST, CHATTER_PHRASE_LIST

    for phrase in CHATTER_PHRASE_LIST + CHATTER_ASSISTANT_PHRASE_LIST:
        assert re.fullmatch(f"(?:{phrase})", "") is None, phrase


@pytest.mark.parametrize(
    "text",
    [
        # A second red-team pass (sixth session): roles, names, tastes, decisions, questions.
        "Hi, I'm the TA!",
        "Hey! I'm Ty \U0001f642",
        "Hi, I'm Hope!",
        "I'm so-so, thanks",
        "Hmm, too sweet",
        "I'm doing it",
        "Let's do this!",
        "That sounds right",
        "What's new?",
        "I'm the bot",
        "Anytime is cool",
    ],
)
def test_second_red_team_texts_are_not_chatter(text: str) -> None:
    assert not is_chatter(text)


@pytest.mark.parametrize("text", ["hi! i'm the ta", "hi, i'm hope!", "this is ty", "Good evening!"])
def test_saying_who_one_is_or_the_time_is_not_chatter(text: str) -> None:
    assert not is_chatter(text)


def _passed_over(*turns: str) -> list[str]:
    """The user turns and assistant messages of a conversation that kept_turns passes over."""
    chat = [("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)]
    kept = kept_turns(chat)
    return [t for _, t in chat if (_, t) not in kept and t]


PLAIN = "Checkout is before noon and the front desk is open all night."


@pytest.mark.parametrize(
    "answer",
    [
        # A fourth red-team pass: offers, proposals and guesses with no "?" and no "I can".
        "Checkout is at 11 am. Late checkout until 2 pm is available for 25 dollars.",
        "A second driver can be added for 10 dollars a day.",
        "Reminder set for Thursday. One the day before can be added as well.",
        "Quickest fix is to roll back to release 2.3.",
        "Looks like you're running it outside your venv.",
        "Pro is 20 dollars a month. Switching to annual billing brings it to 192 dollars.",
    ],
)
def test_after_a_proposal_only_a_thanks_is_passed_over(answer: str) -> None:
    assert _passed_over("Hi, a question.", answer, "Oh perfect, thanks!", "Anytime!") == []
    thanked = _passed_over("Hi, a question.", answer, "Thanks!", "Anytime!")
    assert thanked == ["Thanks!", "Anytime!"]


@pytest.mark.parametrize(
    "remark",
    ["It's ok, thanks!", "I'm alright, thanks.", "I'm ok lol", "all good, thanks", "Perfect!",
     "ok 👍", "Hmm.", "Wow. Seriously.", "Omg, I'm so glad!"],
)  # fmt: skip
def test_after_a_plain_answer_praise_alone_a_stance_or_a_decline_is_kept(remark: str) -> None:
    assert remark not in _passed_over("When is checkout?", PLAIN, remark, "You're welcome!")


def test_after_a_plain_answer_praise_beside_a_thanks_is_passed_over() -> None:
    turns = ("When is checkout?", PLAIN, "Perfect, thanks!", "You're welcome!")
    assert _passed_over(*turns) == ["Perfect, thanks!", "You're welcome!"]


@pytest.mark.parametrize("reply", ["You got it!", "Noted!", "Absolutely, happy to!"])
def test_a_reply_that_commits_to_something_is_kept(reply: str) -> None:
    kept = _passed_over("When is checkout?", PLAIN, "Great, thanks!", reply)
    assert kept == ["Great, thanks!"]


def test_a_question_about_earlier_messages_keeps_every_turn() -> None:
    chat = [("user", "When is checkout?"), ("assistant", PLAIN), ("user", "Thanks!")]
    assert kept_turns(chat, everything=True) == chat
    assert ("user", "Thanks!") not in kept_turns(chat)


def test_a_second_message_in_a_row_still_answers_the_question() -> None:
    # A fifth red-team pass: the cue holds until the assistant speaks again.
    offer = "AppleCare is $149 for two years. Want me to add it?"
    for second in ("lol ok", "Perfect!", "It's ok"):
        assert second not in _passed_over("Add the 128GB model.", offer, "hmm", second)
    closed = _passed_over("Add it.", offer, "Thanks!", "You're welcome!", "Perfect!")
    assert "Perfect!" not in closed


def test_an_offer_in_happy_to_words_makes_even_a_thanks_an_answer() -> None:
    said = "I'm happy to waive it as a one-time courtesy."
    assert _passed_over("Why was I charged a late fee?", said, "Thank you so much!") == []


# Eighth session: a greeting that tells the time keeps its conversation's entries apart by
# that time; the conversation without it may answer it, never the other way round.
def _key(*turns: str) -> Key:
    """The key of a conversation whose last turn is the question."""
    chat = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
    ]
    k = make_key(Request("t1", "fast", "v1", chat, {"temperature": 0}), POLICY)
    assert isinstance(k, Key), k
    return k


POLICY = SemanticCachePolicy(enabled=True, threshold=0.8)
QUESTION = "How do I repot a succulent without killing it?"


@pytest.mark.parametrize(
    ("greeting", "reply"),
    [("Good morning!", "Good morning! How can I help?"),
     ("evening! 🌙", "Evening! What can I do for you?"),
     ("Hi, good afternoon", "Good afternoon! What can I help with?")],
)  # fmt: skip
def test_a_greeting_that_tells_the_time_of_day_may_be_answered_from_the_conversation_without_it(
    greeting: str, reply: str
) -> None:
    timed, plain = _key(greeting, reply, QUESTION), _key(QUESTION)
    assert timed.fallback_scope == plain.scope and not plain.fallback_scope
    assert timed.scope != plain.scope  # its own entries never answer the plain conversation
    assert timed.context == plain.context == ""
    assert not is_chatter(greeting)  # alone it is kept: it tells the time


@pytest.mark.parametrize(
    ("greeting", "question"),
    [("Hey, happy Friday!", QUESTION),  # a day tells which businesses are open
     ("Happy New Year!", QUESTION),
     ("hi, hope your weekend was good", QUESTION),
     ("Happy Sunday!", "Can I go to the bank to deposit a check in person?"),
     ("Good evening!", "Should I have an espresso?"),  # whether to do it now
     ("Good morning!", "Is it okay to have a beer?"),
     ("Good evening!", "Is it a good time to call my boss about the raise?"),
     ("Happy New Year!", "Is the post office open today?")],
)  # fmt: skip
def test_a_greeting_that_tells_a_day_or_precedes_a_question_about_now_stays_apart(
    greeting: str, question: str
) -> None:
    timed, plain = _key(greeting, "Hello! How can I help?", question), _key(question)
    assert timed.scope != plain.scope and not timed.fallback_scope


def test_greetings_that_tell_other_times_never_meet() -> None:
    morning = _key("Good morning!", "Good morning! How can I help?", QUESTION)
    evening = _key("Good evening!", "Good evening! How can I help?", QUESTION)
    sunday = _key("Happy Sunday!", "Happy Sunday! How can I help?", QUESTION)
    assert len({morning.scope, evening.scope, sunday.scope, morning.fallback_scope}) == 4
    again = _key("hiya, good morning", "Good morning! What can I do for you?", QUESTION)
    assert again.scope == morning.scope  # the same time, told in other words


def test_a_time_greeting_after_an_answer_is_no_closing_remark() -> None:
    said = ("Is the pharmacy open?", "It's open until 9 pm.", "Thanks, good evening!")
    # (its leading thanks is taken off, ninth session; the greeting stays the context)
    assert _key(*said, "You're welcome!", "And on Sunday?").context == "good evening!"
    assert not is_chatter("Happy New Year!") and not is_chatter("Happy holidays!")


@pytest.mark.asyncio
async def test_the_time_a_greeting_tells_is_served_only_one_way() -> None:
    embedder = HashEmbedder()
    lib = SemanticLibrary(embedder, InProcessIndex(embedder.dim))
    plain, evening = (
        _key(QUESTION),
        _key("Good evening!", "Good evening! How can I help?", QUESTION),
    )
    morning = _key("Good morning!", "Good morning! How can I help?", QUESTION)
    first = await lib.lookup(evening, POLICY)
    await lib.put(evening, first.vector, Answer(b'{"a": "not this late"}', "m", "t"))
    assert (await lib.lookup(plain, POLICY)).hit is None
    assert (await lib.lookup(morning, POLICY)).hit is None
    await lib.put(plain, first.vector, Answer(b'{"a": "in moderation"}', "m", "t"))
    hit = (await lib.lookup(morning, POLICY)).hit
    assert hit is not None and "moderation" in str(hit.payload["body"])


@pytest.mark.parametrize(
    "reply",
    ["You're welcome, good luck with it!", "Happy to help, hope it perks up!",
     "Ha, enjoy!", "You're welcome! Feel better soon.", "Anytime! Drive safe.",
     "Glad it helps! Hope it works out!", "You're welcome, hope you get it sorted!"],
)  # fmt: skip
def test_the_assistants_good_wishes_after_a_thanks_are_passed_over(reply: str) -> None:
    assert _passed_over("How do I get wax out of a carpet?", PLAIN, "Thanks!", reply) == [
        "Thanks!",
        reply,
    ]


@pytest.mark.parametrize(
    "reply",
    ["Enjoy the Pro plan!", "Good luck! Reply YES to confirm.", "Good luck with the 3 pm slot!",
     "Good luck?", "Enjoy! I've booked the window seat.", "Hope it goes well. Shall I add it?",
     "You got it, good luck!", "Hope your son feels better soon!", "Hope your pup feels better",
     "Enjoy the ramen!", "Enjoy your free month!", "Hope the ibuprofen helps!"],
)  # fmt: skip
def test_good_wishes_that_name_choose_commit_or_ask_are_kept(reply: str) -> None:
    assert reply not in _passed_over("How do I get wax out of a carpet?", PLAIN, "Thanks!", reply)


@pytest.mark.parametrize(
    "remark",
    ["Thanks, you're a lifesaver", "great tip, thanks", "oh cool, thanks for explaining",
     "ok thank u!!", "Thanks a ton!", "awesome, thanks for breaking it down"],
)  # fmt: skip
def test_thanks_with_praise_for_the_help_closes_a_plain_answer(remark: str) -> None:
    assert _passed_over("When is checkout?", PLAIN, remark, "You're welcome!") == [
        remark,
        "You're welcome!",
    ]


@pytest.mark.parametrize(
    "remark",
    ["Thanks, a is fine", "Thanks, you're a lifesaver, book it", "great tip, I'm vegan",
     "Great idea!", "Good idea, thanks!", "That's a relief!", "That's reassuring, thanks",
     "You're a lifesaver!", "What a great tip!"],
)  # fmt: skip
def test_praise_for_the_help_does_not_carry_a_choice_or_a_fact(remark: str) -> None:
    assert remark not in _passed_over("When is checkout?", PLAIN, remark, "You're welcome!")
    offer = "I'd recommend adding travel insurance for $60."
    assert remark not in _passed_over("Book the flight.", offer, remark, "Glad that helps!")


@pytest.mark.parametrize(
    "remark",
    ["thanks buddy", "thx bro", "thank you my friend", "ty boss", "perfect thanks man",
     "ok thank you very much friend"],
)  # fmt: skip
def test_a_thanks_with_a_term_of_address_closes_a_plain_answer(remark: str) -> None:
    assert _passed_over("When is checkout?", PLAIN, remark, "You're welcome!") == [
        remark,
        "You're welcome!",
    ]


@pytest.mark.parametrize(
    "remark",
    ["thanks man, my back hurts", "thanks, my son will love it", "thanks buddy, for my mom",
     "thx bro, I'm 16"],
)  # fmt: skip
def test_a_term_of_address_carries_nothing_else_past_the_rules(remark: str) -> None:
    assert remark not in _passed_over("When is checkout?", PLAIN, remark, "You're welcome!")


def test_praise_for_the_help_beside_a_thanks_closes_only_a_plain_answer() -> None:
    offer = "I'd recommend adding travel insurance for $60."
    for remark in ("Thanks, you're a lifesaver", "great tip, thanks"):
        assert remark not in _passed_over("Book the flight.", offer, remark, "Glad that helps!")


def test_of_course_after_a_thanks_is_kept_even_after_a_plain_answer() -> None:
    # A third red-team pass: an answer may propose in words SOLICITS does not know ("I'd
    # gladly draft that letter"), and "Of course!" then accepts it.
    for reply in ("Of course!", "Sure thing!", "You bet!"):
        assert reply not in _passed_over("When is checkout?", PLAIN, "Thanks!", reply)


@pytest.mark.parametrize(
    ("greeting", "reply"),
    [("Howdy!", "Howdy! What can I do for you?"), ("Hey assistant", "Hey! What can I do for you?"),
     ("Hi again, it's me", "Hi! Good to hear from you again. What do you need?"),
     ("Hi, hope I'm not bothering you", "Not at all, ask away!"),
     ("hi!", "Glad to have you back! What can I help with?")],
)  # fmt: skip
def test_more_greetings_and_their_replies_are_chatter(greeting: str, reply: str) -> None:
    assert _passed_over(greeting, reply, "How do I freeze the top row in Excel?") == [
        greeting,
        reply,
    ]


@pytest.mark.parametrize(
    "remark", ["thank youuu", "that's great info, thank you", "nice one, cheers"]
)
def test_stretched_thanks_and_praise_for_the_info_close_a_plain_answer(remark: str) -> None:
    assert _passed_over("When is checkout?", PLAIN, remark, "You're so welcome!") == [
        remark,
        "You're so welcome!",
    ]


@pytest.mark.parametrize(
    "aside",
    ["one sec, phone's ringing", "brb", "ok sorry I'm back", "sorry, got distracted for a sec",
     "sorry about the wait, had to grab something", "omg I love how fast you reply"],
)  # fmt: skip
def test_an_aside_after_a_plain_answer_is_passed_over_with_its_reply(aside: str) -> None:
    # A held-out set of long conversations (multiturn_thirteenth) paused and resumed.
    assert _passed_over("When is checkout?", PLAIN, aside, "Of course, go ahead.") == [
        aside,
        "Of course, go ahead.",
    ]


def test_anything_else_asks_something_the_next_no_answers() -> None:
    chat = [("user", "Why is my storage almost full?"), ("assistant", PLAIN), ("user", "thanks!")]
    chat += [("assistant", "Glad I can help! Anything else?"), ("user", "no")]
    assert ("assistant", "Glad I can help! Anything else?") in kept_turns(chat)


def test_an_aside_answers_no_question_the_next_turn_does() -> None:
    asked = "Do you still have access to the email on the account?"
    chat = [("user", "I can't log in."), ("assistant", asked), ("user", "one sec, phone's ringing")]
    chat += [("assistant", "Sure, I'll be here."), ("user", "yes")]
    assert kept_turns(chat) == [chat[0], chat[1], ("user", f"{asked}\nyes")]


@pytest.mark.parametrize(
    ("answer", "aside"),
    [("Reply OK to confirm the booking?", "ok sorry I'm back"),
     ("Late checkout is available for 25 dollars.", "brb"),
     (PLAIN, "one sec, I'm vegan"), (PLAIN, "one sec, kids are being loud"),
     # a red-team pass: an outcome reported, a counter-question invited
     (PLAIN, "that helped, thanks"), (PLAIN, "how's your day going btw")],
)  # fmt: skip
def test_an_aside_that_may_accept_or_tell_something_is_kept(answer: str, aside: str) -> None:
    assert aside not in _passed_over("When is checkout?", answer, aside, "Sure, I'll be here.")


# Ninth session: a turn's leading chatter is taken off when it would pass as a message of its
# own there (without_leads); the rest of the turn is compared.
def _last(*turns: str) -> str:
    """The last user turn of a conversation after without_leads."""
    chat = [("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)]
    return without_leads(chat)[0][-1][1]


@pytest.mark.parametrize(
    ("turn", "rest"),
    [("Thanks! What oil should I use?", "What oil should I use?"),
     ("cool, thx. and hard herbs like rosemary?", "and hard herbs like rosemary?"),
     ("sorry, got distracted for a sec. it says 8gb. should i upgrade",
      "it says 8gb. should i upgrade"),
     ("gotcha - is it always 5", "is it always 5")],
)  # fmt: skip
def test_a_closing_remark_leading_a_question_after_a_plain_answer_is_taken_off(
    turn: str, rest: str
) -> None:
    assert _last("When is checkout?", PLAIN, turn) == rest


@pytest.mark.parametrize(
    ("turn", "rest"),
    [("hi there! how do I install node on ubuntu", "how do I install node on ubuntu"),
     ("hey, quick question: can I freeze pesto?", "can I freeze pesto?"),
     ("Hello! Is it safe to eat raw cookie dough?", "Is it safe to eat raw cookie dough?")],
)  # fmt: skip
def test_a_greeting_leading_the_first_question_is_taken_off(turn: str, rest: str) -> None:
    assert _last(turn) == rest
    with_greeting = _key(turn, "An answer.", "And for kids?")
    without = _key(rest, "An answer.", "And for kids?")
    assert (with_greeting.scope, with_greeting.context) == (without.scope, without.context)


@pytest.mark.parametrize(
    ("answer", "turn"),
    [# after an offer or a question the lead answers it
     ("Late checkout is available for 25 dollars.", "Perfect. When is breakfast?"),
     ("Do you want the vegan version?", "Great, thanks! How long does it bake?"),
     # praise alone may answer or accept (a red-team pass): "Perfect. What's my total?"
     (PLAIN, "oh neat. does that modify d1"), (PLAIN, "ok great. what about my phone bill"),
     # an exercise set with no "?": even a thanks answers it
     ("Translate 'gracias' into English.", "Thank you. Did I get it right?"),
     ("Name the word Brits say when clinking glasses.", "Cheers! Right answer?"),
     # the rest speaks of the whole turn, or asks about the present
     (PLAIN, "Thanks! How many words are in this message?"),
     (PLAIN, "Thanks! Is it too late for an espresso?"),
     # not chatter: a stance, a decline, a time of day
     (PLAIN, "Hmm. What time does it close?"), (PLAIN, "no thanks. What else is there?"),
     (PLAIN, "good evening! should I have an espresso?")],
)  # fmt: skip
def test_a_lead_that_answers_or_tells_something_stays(answer: str, turn: str) -> None:
    assert _last("When is checkout?", answer, turn) == turn


def test_a_fact_after_a_leading_thanks_stays_in_the_turn() -> None:
    turn = "thanks, I'm vegan btw. what should I order?"
    assert _last("When is checkout?", PLAIN, turn) == "I'm vegan btw. what should I order?"


@pytest.mark.parametrize("turn", ["one sec, phone's ringing", "thank you, this is great"])
def test_a_turn_passed_over_whole_is_not_split(turn: str) -> None:
    assert _last("When is checkout?", PLAIN, turn) == turn
    assert turn in _passed_over("When is checkout?", PLAIN, turn, "You're welcome!")


def test_leads_stay_when_the_question_refers_to_earlier_messages() -> None:
    question = "Thanks! What did I say in my first message?"
    chat = [{"role": "user", "content": "Hi! My name is Sam."}]
    chat += [{"role": "assistant", "content": "Nice to meet you."}]
    chat += [{"role": "user", "content": question}]
    k = make_key(Request("t1", "fast", "v1", chat, {"temperature": 0}), POLICY)
    assert isinstance(k, Key) and k.text == question


def test_without_chatter_leads_turns_are_compared_whole() -> None:
    chat = [{"role": "user", "content": "Thanks! What oil should I use?"}]
    off = POLICY.model_copy(update={"chatter_leads": False})
    k = make_key(Request("t1", "fast", "v1", chat, {"temperature": 0}), off)
    assert isinstance(k, Key) and k.text == "Thanks! What oil should I use?"
