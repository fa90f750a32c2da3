"""Chatter: the turns of a conversation the semantic cache may pass over.

When to use: ``cache.semantic.make_key`` walks a conversation with ``kept_turns`` to find the
user turns and assistant messages that must be the entry's (its scope and context); the rest
is chatter, skipped.

Policy: a follow-up is served only when every earlier turn that is not chatter is the same as
the stored conversation's, so what counts as chatter decides both how often a conversation
with a greeting or a "thanks" in it hits and whether a turn that changes the answer is ever
overlooked. The second matters more, and three red-team passes showed how many ways a fact,
a choice or an instruction can be dressed as social talk. So chatter is narrow:

- A user turn is chatter only when it is social talk (greetings, thanks, acknowledgements,
  small talk about the chat; phrases, then a closed vocabulary, cache.lexicon) and holds
  nothing else: no digit, no symbol or emoji beyond a few smileys, no dotted abbreviation, no
  letter standing alone, no capitalised or upper-case word inside a sentence ("I'm the TA",
  "I'm Hope"), not only function words ("That's it!").
- Never after an assistant's question or offer: a "?" anywhere in the assistant's messages
  since the last user turn, or an offer or request for a decision ("I can waive the fee",
  "Let me know if you'd like me to ...", "Shall I ...", "Please confirm"). Then "Perfect,
  thanks!" accepts and "That's okay, thanks!" declines. The cue holds until the assistant
  speaks again, so a second user message is an answer too.
- After an assistant's answer, only a closing remark is passed over: a thanks or an "I
  understand" ("Thanks!", "Got it, that helps"), and, when the answer asks and proposes
  nothing, one with a word of praise beside it ("Perfect, thanks!", "Oh nice, good to know").
  Praise alone ("Perfect!", "ok 👍"), a stance ("Hmm.", "Wow. Seriously."), a status or a
  decline ("I'm ok", "It's ok, thanks") is kept: it may accept, choose, confirm or refuse what
  the answer said. An answer proposes something (SOLICITS) when it asks the user to reply,
  pick or confirm without a "?", says what the assistant will do, has prepared or assumes, or
  offers, suggests or guesses ("Late checkout is available for $25", "Happy to add one too",
  "Best fix is to roll back", "Looks like you're outside your venv").
- The assistant's reply to such a closing remark is passed over only when it commits to
  nothing ("You're welcome!", not "You got it!", "Noted!" or "Absolutely, happy to!").
- A last question that refers to an earlier message ("Translate my previous message") keeps
  every turn.
- A turn that repeats words of the assistant's message in their order picks one of them
  ("Take care!" to "Sign-offs people like: Cheers, Best, or Take care."): it is kept.
- A greeting that tells the time of day, the day or a holiday ("Good evening!", "Happy
  Friday!", "Happy New Year!") may change the answer ("Should I have an espresso?", "Is the
  post office open today?"). It is passed over only into a scope of its own time
  (cache.semantic.make_key): such a conversation is answered by entries that told the same
  time, or by the same conversation without the greeting (whose answer assumed no time) when
  no user turn asks about the present (TIME_SENSITIVE); never the other way round. A turn
  that says who the user is ("i'm the ta") is never passed over.
- The assistant's good wishes in a social reply ("Good luck with it!", "Feel better soon.")
  are passed over; a wish with a noun of its own ("Hope your son feels better") is kept.
- Chatter that leads a turn ("Thanks! What oil should I use?") is taken off by the same rules
  (``without_leads``): only a lead that would pass as a message of its own at that place,
  never when the rest speaks of the turn itself or asks about the present. Praise alone as a
  lead was red-teamed into wrong answers (it answers quizzes and accepts priced offers).
- An exercise set without a "?" ("Translate 'gracias'.") waits for an answer like a question.
- The kept turns are digested in conversation order: which turn came after which answer is
  part of the key.
- An assistant message is chatter only when it answers a user turn that was chatter (a
  greeting answered with a greeting) and is social talk on its own side ("Sure thing!").
  After a real question, "Absolutely!" is an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cache.lexicon import (
    ABBREVIATION,
    ACKNOWLEDGEMENT,
    ACKNOWLEDGEMENT_PHRASES,
    ACKNOWLEDGEMENT_PRAISE,
    ACKNOWLEDGEMENT_PRAISE_PHRASES,
    ACKNOWLEDGEMENT_THANKS,
    ASIDES,
    CHATTER,
    CHATTER_ASSISTANT,
    CHATTER_ASSISTANT_PHRASES,
    CHATTER_EMOJI,
    CHATTER_FUNCTION,
    CHATTER_MAX_WORDS,
    CHATTER_PHRASE_WORDS,
    CHATTER_PHRASES,
    CHATTER_PUNCT,
    CHATTER_STRETCHABLE,
    CHATTER_TOKEN,
    CHATTER_UPPER,
    PAUSE_ASIDES,
    TIME_SENSITIVE,
    WELL_WISHES,
)

CHATTER_MAX_CHARS = 120  # longer turns are never chatter
STRETCHED = re.compile(r"(.)\1{2,}")  # "hellooo" -> hello
DOUBLED = re.compile(r"(.)\1+$")  # "hii" -> hi, "okk" -> ok
DOUBLED_THANKS = re.compile(r"\b(you|thanks)(u|s)\b")  # "thank youu" -> you, "thankss"
SHORT_REPLY = 3  # words: a reply this short to the assistant's question is kept with it
SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
QUESTION_MARKS = ("?", "\uff1f", "\u2753", "\u2754")
WORD_PARTS = re.compile(r"['-]")  # "i'm", "so-so": each part must be a phrase's word
NAME_TOKENS = re.compile(r"[\w'\u2019]+|[^\w\s'\u2019,]+")  # words, and what ends a sentence
# An assistant's offer or request for a decision: the next user turn answers it.
OFFER = re.compile(
    r"\b(would you like|do you want|want me to|shall i|should i|shall we|should we"
    r"|(i|we) can (also |easily |gladly )?(?!help\b|assist\b)\w+|(i|we) could"
    r"|if you('d| would) like|if you want|if you prefer|let me know (if|which|whether|what|when)"
    r"|tell me (if|which|whether|what|when)|just say the word|please (confirm|choose|pick|reply)"
    r"|reply (ok|yes|y)|unless you|how about|would you prefer|which (one|option) (do|would)"
    r"|i'?ll go ahead|(happy|glad|able) to (?!help\b|assist\b)\w+)\b"
)
# "I can help with that" and "I can assist" offer nothing to accept; "Happy to waive it" does.
# What an answer may ask of the user without a "?" or an offer: to reply, choose, confirm or
# report back (an imperative that opens a sentence: "Reply with OK to confirm.", "Pick a
# sign-off: ..."), or to accept what the assistant is about to do, has prepared or assumes.
# Searched in the whole message: 6% of the assistant messages of the multi-turn sets in
# data/cache_eval hold one, and then only a thanks is passed over.
SOLICITS = re.compile(
    r"(^|[.!:;]\s+|\n)(please |just |simply |now )?(reply|respond|answer|type|say|text|send"
    r"|pick|choose|select|confirm|approve|decide|tell me|let me know|get back to me)\b"
    r"|\b(i'll|i will|i'm going to|i am going to|we'll|we will|we're going to|let me"
    r"|(i'm|i am|we're|we are|i'd be|we'd be|i would be) (happy|glad|ready|able) to"
    r"|(i've|i have|we've|we have) (\w+ )?(prepared|set|drafted|scheduled|booked|created|added"
    r"|queued|made|put|started|reserved|ordered|saved|sent|noted|updated|changed|switched)"
    r"|(i'm|i am|i'll|i will|we're|we'll|i've) (\w+ )?assum\w*|assuming (you|your)"
    r"|unless you|unless (i|we) hear|let me know|tell me|get back to me|say the word"
    r"|go ahead|proceed|approve|to confirm|reply (with|yes|ok|no|y|n|back)"
    r"|ready when you"
    # bare offers, proposals and guesses (a fourth red-team pass)
    r"|(is|are) (also )?available|can (also |easily )?be (\w+ )?(added|included|arranged"
    r"|booked|upgraded|extended|switched|changed|waived|scheduled|moved|sent|done|made|set)"
    r"|(happy|glad|easy|possible|simple|free) to|(would|could) (also |easily )?(add|include"
    r"|switch|change|upgrade|book|set|send|make|do|try)|best (approach|option|bet|fix|move"
    r"|choice|plan)|(quickest|easiest|simplest|cheapest|fastest|safest) (fix|way|option|route"
    r"|approach)|probably|looks like|sounds like|my guess|most likely|(i|we) (suggest|recommend)"
    r"|i'd (suggest|recommend|go with)|options?|brings? (it|that|the total|your)|instead)\b"
    r"|\b(too|as well)[.!]"
    # ... and what is on offer: a price, a time or a day, a seat, an opening, a free slot
    r"|[$\u20ac\u00a3]\s?\d|\d\s?(am|pm|a\.m|p\.m)\b|\b\d+ (dollars|euros|pounds|bucks)\b"
    r"|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight)\b"
    r"|\b(row|seat|gate|room|table) \d|\b(openings?|slots?|free|qualify|qualifies|eligible"
    r"|in stock|spots? left|seats? left)\b"
)
# The assistant's reply that commits to what the user's remark may have accepted.
COMMITS = re.compile(
    r"\b(you got it|got it|noted|will do|done|on it|absolutely|certainly"
    r"|consider it|added|booked|set|all set|right away|happy to(?! help)|of course|sure"
    r"|you bet|let'?s)\b"
)
# A last question about the conversation's own messages: every turn is part of its key.
REFERS_BACK = re.compile(
    r"\b(my|the) (last|previous|earlier|first|above|prior|original) (message|msg|reply|question"
    r"|text|comment|answer|response)|\bwhat i (just )?(said|wrote|asked|typed|meant)"
    r"|\b(above|previous) (message|messages|text)|\bi just (said|wrote|asked)"
    r"|\bwhat did i (just )?(say|ask|write|tell|type|mention)|\b(first|last) thing i"
    r"|\b(this|our|the) (chat|conversation|thread|exchange)|\b(all|every|each) (of )?my (messages"
    r"|questions)|\bhow many (messages|questions|times)|\bmy greeting|\btranscript"
    r"|\b(talked|spoken|chatted) before|\bwhat i (asked|said) (first|earlier|before)"
    r"|\bdid i (just )?(thank|greet|say|ask|mention|tell|write)|\beverything i (said|asked|wrote)"
    r"|\bgreeting did i|\bwhat (do|did) you mean\b"
)
# A confirmation of the assistant's guess ("That was it, thanks!") is an answer.
CONFIRMS = re.compile(r"\b(that('s| is| was) it|it was that|that'?s the one|that'?s (ok|okay))\b")
# After an answer, so is a decline or a status ("It's ok, thanks", "I'm alright", "all
# good"); in a greeting, "I'm good, thanks!" answers "How are you?".
DECLINES = re.compile(
    r"\b((that|it|i|we|you)('s|'m|'re| is| am| are|s|m) (all )?(ok|okay|alright|all right|cool"
    r"|fine|good)|all good)\b"
)
# Words that tell the time of day or of the week, in a greeting: such a turn is never chatter
# ("Good evening!" before "Is the pharmacy still open?", "Have a great weekend!" before "Is the
# bank open today?").
TIME_OF_DAY = frozenset(
    {"morning", "afternoon", "evening", "night", "mornin", "tonight", "week", "weekend"}
    | {"week's", "weekend's", "morning's", "evening's", "night's", "weeks", "mondays"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
    | {"year", "holidays", "christmas", "easter", "thanksgiving", "hump"}
)
# The sun and the moon in a greeting ("Good morning! ☀️"): the time of day again.
TIMED_EMOJI = frozenset("☀🌞🌙🌛🌜🌅🌄⛅🌤")
# What time_words may say that is only a part of the day, not a day or a holiday.
DAY_PARTS = frozenset({"morning", "afternoon", "evening", "night", "tonight"}) | TIMED_EMOJI
# Saying who one is: "hi! i'm the ta", "i'm hope", "this is ty".
NAMING = re.compile(
    r"\b(i'?m|i am|this is|it'?s|call me|my name'?s|my name is)( the| a| an| your)? "
    r"(ta|ty|np|hope|sup|ahoy|bro|dude|u|ur|bot|assistant|friend)\b"
)


# Capitalised inside a sentence, and still no name: "I", the days ("Happy Friday!": a time,
# TIME_OF_DAY) and the holidays.
SPELLED_CAPITALISED = frozenset(
    {"I", "I'm", "I\u2019m", "I've", "I'll", "I\u2019ll", "I'd", "I\u2019d"}
    | {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
    | {"Saturday", "Sunday", "New", "Year", "Christmas", "Easter", "Thanksgiving"}
)


def is_chatter(
    text: str,
    after_question: bool = False,
    assistant: bool = False,
    after_answer: bool = False,
    plain: bool = False,
    timed_greetings: bool = False,
) -> bool:
    """A turn no later question can refer to and that changes no answer (module docstring).
    ``after_answer``: the assistant answered since the last user turn, so only a closing
    remark can be passed over: a thanks or an "I understand", and with ``plain`` (the answer
    proposes nothing: no SOLICITS) also one with praise beside it ("Perfect, thanks!").
    ``timed_greetings``: a greeting may tell the time of day or the day ("Good evening!",
    "Happy Friday!"); the key then keeps the time apart (cache.semantic.make_key)."""
    if after_question or len(text) > CHATTER_MAX_CHARS:
        return False  # chatter is short: no regex over a long answer
    if not _only_words(text, CHATTER_EMOJI | TIMED_EMOJI if timed_greetings else CHATTER_EMOJI):
        return False
    lowered = _straight(text.lower())
    if ABBREVIATION.search(lowered) or CONFIRMS.search(lowered):
        return False
    tokens = CHATTER_TOKEN.findall(lowered)
    if (not timed_greetings and any(t in TIME_OF_DAY for t in tokens)) or NAMING.search(lowered):
        return False  # "Good evening!" tells the time; "i'm hope" a name, "i'm the ta" a role
    if after_answer:
        praise = ACKNOWLEDGEMENT_PRAISE if plain else frozenset()
        return not DECLINES.search(lowered) and _acknowledgement(lowered, praise)
    vocabulary = CHATTER_ASSISTANT if assistant else CHATTER
    if assistant:  # "Good luck with the move!", "Enjoy your pizza!", "Feel better soon."
        wished = WELL_WISHES.sub(" ", lowered)
        asks = any(mark in wished for mark in QUESTION_MARKS)
        if wished != lowered and not asks and not CHATTER_TOKEN.findall(wished):
            return True
        lowered = wished
        tokens = CHATTER_TOKEN.findall(lowered)
    if not all(
        _social(w, vocabulary) or all(_in_phrases(p) for p in WORD_PARTS.split(w)) for w in tokens
    ):
        return False  # a word neither the phrases nor the vocabulary hold
    rest = (CHATTER_ASSISTANT_PHRASES if assistant else CHATTER_PHRASES).sub(" ", lowered)
    if any(mark in rest for mark in QUESTION_MARKS):
        return False
    words = CHATTER_TOKEN.findall(rest)
    if not words:
        return rest != lowered  # only phrases
    if rest == lowered and all(w in CHATTER_FUNCTION for w in words):
        return False  # "That's it!": no greeting, thanks or acknowledgement in it
    return len(words) <= CHATTER_MAX_WORDS and all(_social(w, vocabulary) for w in words)


def _acknowledgement(lowered: str, praise: frozenset[str]) -> bool:
    """A thanks or an "I understand" ("Thanks!", "Got it, that helps.", "Makes sense, thank
    you"), with words of ``praise`` beside it ("Perfect, thanks!"). Praise alone is not one:
    "ok", "perfect" or "great" may accept, choose or confirm ("Reply OK to confirm", "Late
    checkout is available for $25": "Oh perfect!")."""
    lowered = STRETCHED.sub(r"\1", lowered)  # "thank youuu", "thanksss"
    lowered = DOUBLED_THANKS.sub(r"\1", lowered)  # "thank youu", "thankss"
    rest = ACKNOWLEDGEMENT_PHRASES.sub(" ", ACKNOWLEDGEMENT_THANKS.sub(" ", lowered))
    thanked = rest != lowered
    if praise:
        rest = ACKNOWLEDGEMENT_PRAISE_PHRASES.sub(" ", rest)
    words = CHATTER_TOKEN.findall(rest)
    return (
        thanked
        and len(words) <= CHATTER_MAX_WORDS
        and all(w in CHATTER_FUNCTION or w in ACKNOWLEDGEMENT or w in praise for w in words)
    )


def asks_about_time(user_turns: Sequence[str]) -> bool:
    """Whether a user turn, its social phrases aside, holds a word that makes the answer
    depend on when it is asked (TIME_SENSITIVE): "Is it still open?", "What should I cook?"."""
    return any(TIME_SENSITIVE.search(CHATTER_PHRASES.sub(" ", t.lower())) for t in user_turns)


def time_words(text: str) -> list[str]:
    """The times of day, days and holidays a turn tells ("Good evening!": ["evening"]; the sun
    and the moon count as the time of day they show)."""
    words = [w.removesuffix("'s") for w in CHATTER_TOKEN.findall(_straight(text.lower()))]
    said = [("morning" if w == "mornin" else w) for w in words if w in TIME_OF_DAY]
    return said + [c for c in text if c in TIMED_EMOJI]


def _only_words(text: str, emoji: frozenset[str]) -> bool:
    """Letters, punctuation and these ``emoji`` only, and no name: no digit, no symbol, no
    emoji that may say something ("I'm 🤰"), no capitalised word inside a sentence."""
    lowered = text.lower()
    return all(c.isalpha() or c in CHATTER_PUNCT or c in emoji for c in lowered) and not _named(
        text
    )


def _named(text: str) -> bool:
    """A capitalised word inside a sentence or a word in capitals ("I'm the TA", "I'm Hope"),
    other than "I" and a few shouted social words ("OK", "LOL")."""
    start = True
    for word in NAME_TOKENS.findall(text):
        if not (word[0].isalnum() or word[0] == "_"):  # ". ! ? :) 😊": a new sentence
            start = True
            continue
        if word.isupper() and len(word) > 1 and word.lower() not in CHATTER_UPPER:
            return True
        if not start and word[0].isupper() and word not in SPELLED_CAPITALISED:
            return True
        start = False
    return False


def _in_phrases(word: str) -> bool:
    """A word some chatter phrase may hold, also with an ending the phrase spells apart
    ("hows": how('s|s), "helped": help(s|ed))."""
    return (
        word in CHATTER_PHRASE_WORDS
        or word[:-1] in CHATTER_PHRASE_WORDS
        or word[:-2] in CHATTER_PHRASE_WORDS
    )


def _social(word: str, vocabulary: frozenset[str] = CHATTER) -> bool:
    """A social word, also a greeting or a thanks stretched for emphasis: "heyyy", "hellooo",
    "hii", "thxx" (never "too" -> to, "ii" -> i)."""
    if word in vocabulary:
        return True
    forms = {STRETCHED.sub(r"\1", word), DOUBLED.sub(r"\1", word)} - {word}
    return any(f in CHATTER_STRETCHABLE and f in vocabulary for f in forms)


# An exercise set to the user with no "?" ("Translate 'gracias' into English.", "Name the word
# Brits say when clinking glasses."): the next turn answers it, even "Thank you." (a red-team
# pass, ninth session).
_EXERCISE = (
    r"(now |next,? |ok,? |okay,? |first,? |your turn:? )?(translate|name|guess|spell|solve"
    r"|unscramble|define|identify|conjugate|fill in|pronounce|try to|give me (a|an|the|one|two"
    r"|three|your)|tell me (the|a|an|your)|what'?s your (answer|guess)|your answer)\b"
)
EXERCISE = re.compile(_EXERCISE)  # at a sentence's start
EXERCISE_WORD = re.compile(r"\b" + _EXERCISE)  # anywhere: is a sentence worth looking for


def cue(text: str) -> str:
    """The assistant message's question or offer, or "": the last sentence holding a "?", an
    offer or an exercise set to the user, anywhere in the message."""
    straight = _straight(text).strip()
    whole = straight.lower()
    if not (
        any(m in straight for m in QUESTION_MARKS)
        or OFFER.search(whole)
        or EXERCISE_WORD.search(whole)
    ):
        return ""  # most answers: one search of the whole, not one per sentence
    for sentence in reversed(SENTENCES.split(straight)):
        lowered = sentence.lower()
        if any(m in sentence for m in QUESTION_MARKS) or OFFER.search(lowered):
            return sentence
        if EXERCISE.match(lowered):
            return sentence
    return ""


def _straight(text: str) -> str:
    """Curly apostrophes as straight ones, as the phrases spell them."""
    return text.replace("\u2019", "'").replace("\u2018", "'")


def kept_turns(
    chat: Sequence[tuple[str, str]], everything: bool = False, timed_greetings: bool = False
) -> list[tuple[str, str]]:
    """The user turns and assistant messages of ``chat`` (role, text) that are not chatter,
    in conversation order (``everything``: all of them, for a question about the
    conversation's own messages, REFERS_BACK). A short user reply to the assistant's question
    ("yes" to "Are you filing jointly?", at most SHORT_REPLY words) is kept together with the
    question: it means nothing without it. The assistant's messages are searched for a
    question or an offer only when the user turn after them could be chatter or is that
    short. ``timed_greetings``: see ``is_chatter``."""
    if everything:
        return [(role, content) for role, content in chat if content]
    walk = _Walk(timed_greetings)
    for role, content in chat:
        walk.step(role, content)
    return walk.kept


@dataclass(slots=True)
class _Walk:
    """kept_turns, one message at a time (without_leads tries a turn's lead on a copy)."""

    timed_greetings: bool = False
    kept: list[tuple[str, str]] = field(default_factory=list)
    # The assistant's latest messages that are not social: every user turn until it answers
    # again replies to them (a second message in a row, or one after "Thanks!" / "You're
    # welcome!", answers the same question or offer).
    pending: list[str] = field(default_factory=list)
    answered: bool = False  # an assistant message was kept: every later user turn follows one
    user_chatter: bool = False  # the last user turn was chatter (none yet: the lead is kept)
    closing: bool = False  # ... and closed an answer: the reply must commit to nothing
    after_user: bool = False  # the previous message was a user turn
    asked: str | None = None  # _pending_cue(pending), once searched
    proposed: bool | None = None  # SOLICITS in pending, once searched

    def copy(self) -> _Walk:
        return replace(self, kept=list(self.kept), pending=list(self.pending))

    def cue(self) -> str:
        """The waiting question or offer's cue, searched at most once while it waits."""
        if self.asked is None:
            self.asked = _pending_cue(self.pending)
        return self.asked

    def proposes(self) -> bool:
        """Whether the pending answer proposes something (SOLICITS), searched once."""
        if self.proposed is None:
            self.proposed = any(SOLICITS.search(_straight(m.lower())) for m in self.pending)
        return self.proposed

    def step(self, role: str, content: str) -> None:
        """Walk one message."""
        if role != "user":
            self._assistant(content)
            return
        pending, answered = self.pending, self.answered
        fits = bool(content) and len(content) <= CHATTER_MAX_CHARS
        candidate = fits and is_chatter(
            content, after_answer=answered, timed_greetings=self.timed_greetings
        )
        aside = fits and _aside(content)
        question = self.cue() if aside else None
        if question:
            aside = _aside(content, answering=True)
        if fits and answered and not candidate:  # praise beside a thanks, if nothing asked
            candidate = aside or is_chatter(content, after_answer=True, plain=True)
            # ... and only then is the answer searched for a proposal (a long regex)
            candidate = candidate and not self.proposes()
        elif fits and not answered and not candidate:
            candidate = aside
        candidate = candidate and not (pending and _echoes(content, pending))
        short = bool(content) and len(content.split()) <= SHORT_REPLY
        if question is None:
            question = self.cue() if candidate or short else ""
        # An aside answers no question: the question waits for the next turn.
        chatter = candidate and (not question or aside)
        if content and not chatter:
            self.kept.append(("user", f"{question}\n{content}" if question and short else content))
        # An aside accepted nothing, so the assistant's "Of course, go ahead." commits to
        # nothing either.
        self.user_chatter, self.closing = chatter, chatter and answered and not aside
        self.after_user = True

    def _assistant(self, content: str) -> None:
        social = self.user_chatter and is_chatter(
            content, assistant=True, timed_greetings=self.timed_greetings
        )
        social = social and not (self.closing and COMMITS.search(_straight(content.lower())))
        if content and not social:
            self.kept.append(("assistant", content))
            # A social reply's "How can I help?" asks for the question itself, not a choice.
            self.pending = [content] if self.after_user else [*self.pending, content]
            self.answered, self.asked, self.proposed = True, None, None
        self.after_user = False


def _aside(text: str, answering: bool = False) -> bool:
    """A turn that only pauses or resumes the conversation, or praises how the assistant talks
    (ASIDES: "one sec, phone's ringing", "ok sorry I'm back", "omg I love how fast you
    reply"), with at most a few social words beside ("ok", "lol", "haha"). With
    ``answering`` (a question of the assistant's pending) only a pause, and no "ok": praise
    and "ok" may answer it."""
    if not _only_words(text, CHATTER_EMOJI):
        return False
    lowered = _straight(text.lower())
    rest = (PAUSE_ASIDES if answering else ASIDES).sub(" ", lowered)
    if rest == lowered:
        return False
    fillers = ASIDE_FILLERS - {"ok", "okay"} if answering else ASIDE_FILLERS
    return all(w in fillers for w in CHATTER_TOKEN.findall(rest))


ASIDE_FILLERS = frozenset(
    {"ok", "okay", "sorry", "so", "lol", "haha", "hehe", "um", "oh", "ah", "anyway"}
)


def _echoes(text: str, messages: Sequence[str]) -> bool:
    """The turn repeats words the assistant just said, in their order: it picks one of them
    ("Take care!" to "Sign-offs people like: Cheers, Best, or Take care.", "OK" to "Reply with
    OK")."""
    said = " ".join(CHATTER_TOKEN.findall(_straight(text.lower())))
    return bool(said) and any(
        f" {said} " in f" {' '.join(CHATTER_TOKEN.findall(_straight(m.lower())))} "
        for m in messages
    )


def _pending_cue(messages: Sequence[str]) -> str:
    """The question or offer of the latest of the assistant's messages that has one."""
    for message in reversed(messages):
        if asked := cue(message):
            return asked
    return ""


# Where a turn's lead may end: a sentence's or a clause's end ("Thanks! What oil ...", "hi,
# how do I ...", "quick question: ..."), or a dash between two.
LEAD_END = re.compile(r"(?<=[.!?:;,\u2026])\s+|\s+[-\u2013\u2014]\s+")
# A turn that speaks of itself ("Great. How many words are in this message?", "Cool - what's
# the first letter of this?") is its lead too (a red-team pass, ninth session).
SELF_REFERENCE = re.compile(
    r"\b(this|my|the) (message|msg|text|sentence|line|paragraph|turn|question)\b"
    r"|\b(of|in|from) this\b|\bthis (one|whole thing)\b|\bwhat i (just )?(wrote|typed|said)"
)


def without_leads(
    chat: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``chat`` with each user turn's leading chatter taken off ("Thanks! What oil should I
    use?" -> "What oil should I use?", "hi there, how do I install node?" -> "how do I install
    node?"): a lead is taken off only when, sent as a message of its own at that place, it
    would be passed over (``kept_turns``), so every rule above holds for it (after an
    assistant's question or offer "Great, thanks." answers; after an answer only a closing
    remark passes). The longest such lead goes; the rest of the turn is kept as it is. A turn
    that is passed over whole stays whole ("one sec, phone's ringing").

    Also ``kept_turns`` of all but the last message of the result: the same walk gave it."""
    out: list[tuple[str, str]] = []
    walk = _Walk()
    for role, content in chat:
        turn = _without_lead(walk, content) if role == "user" and content else content
        out.append((role, turn))
        if len(out) < len(chat):  # the last message needs no step: nothing follows it
            walk.step(role, turn)
    return out, walk.kept


def _without_lead(walk: _Walk, content: str) -> str:
    """A user turn, where ``walk`` stands, without its longest lead that would pass there."""
    leads = _leads(content)
    if not leads:
        return content
    # A lead that may tell the time ("Hope you slept well! Should I have a coffee now?") stays
    # before a question about the present, as a lead that the rest speaks of does.
    lowered = content.lower()
    if SELF_REFERENCE.search(lowered) or TIME_SENSITIVE.search(lowered):
        return content
    walk.cue()  # searched once, for the copies too
    if _may_pass(content):
        whole = walk.copy()
        whole.step("user", content)
        if len(whole.kept) == len(walk.kept):  # a whole chatter turn stays whole
            return content
    for lead, rest in leads:
        alone = walk.copy()
        alone.step("user", lead)
        if len(alone.kept) == len(walk.kept):
            return rest
    return content


def _leads(text: str) -> list[tuple[str, str]]:
    """The (lead, rest) splits of ``text`` whose lead could be chatter anywhere (the loosest
    test ``kept_turns`` applies), longest lead first."""
    splits = []
    for match in LEAD_END.finditer(text):
        lead, rest = text[: match.start()], text[match.end() :]
        if len(lead) > CHATTER_MAX_CHARS:
            break
        if not any(c.isalnum() for c in rest):
            continue
        if _may_pass(lead):
            splits.append((lead, rest))
    return splits[::-1]


def _may_pass(text: str) -> bool:
    """The loosest test kept_turns applies to a user turn: False, and it is kept anywhere."""
    return is_chatter(text) or is_chatter(text, after_answer=True, plain=True) or _aside(text)
