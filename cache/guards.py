"""Near-miss guards: tell apart two questions that an embedding scores as near-identical.

When to use: after a vector search found a cached entry above the threshold, before serving it.
A cosine threshold cannot see these (all-MiniLM-L6-v2 scores "Cancel my subscription" vs
"Don't cancel my subscription" at 0.967), so each guard compares one kind of detail that
changes the answer and vetoes the hit when it differs. A veto only costs a miss (a fresh answer);
a missed veto serves a wrong answer, so every guard leans towards vetoing.

Guards, in the order they are checked (``first_difference`` returns the first that fires):

- ``negation``: one text is negated, the other not.
  "Cancel my subscription" / "Don't cancel my subscription".
- ``polarity``: opposite words or prefixes. "How do I enable 2FA" / "How do I disable 2FA",
  "pros of remote work" / "cons of remote work", "install" / "uninstall", "log in" / "log out".
- ``numbers``: different numbers, amounts, versions, ordinals (words count too).
  "Is 100 mg of ibuprofen safe" / "Is 800 mg of ibuprofen safe", "Python 3.11" / "Python 3.12".
- ``dates``: different dates, months, weekdays, relative days or periods.
  "weather tomorrow" / "weather today", "sales in March" / "sales in April".
- ``entities``: different named entities (capitalised names, acronyms, a gazetteer of places,
  languages, platforms and brands), or one text naming a place/platform the other lacks.
  "VAT rules in the EU" / "VAT rules in the US", "Reverse a list in Python" / "... in Java".
- ``order``: the same entities or content words in another order.
  "flights from Paris to Rome" / "flights from Rome to Paris", "convert pdf to word" /
  "convert word to pdf".
- ``scope``: a qualifier phrase with a different object, or one text's qualifier absent from
  the other. "vaccines for children" / "vaccines for adults", "best diet" / "best diet for
  diabetics".
- ``question``: a different specific question word (who / when / where / why / how many ...).
  "When did the Berlin wall fall" / "Why did the Berlin wall fall".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from cache.lexicon import (
    ANTONYMS,
    AUDIENCES,
    BREAKS,
    CASE_SENSITIVE,
    CURRENCIES,
    DAYS,
    DETERMINERS,
    DIGITS,
    GAZETTEER,
    HOW,
    IDIOMS,
    LONG_TEXT,
    MONTH_ABBR,
    MONTHS,
    MULTIPLIERS,
    MULTIWORD,
    NEGATING_PREFIXES,
    NEGATIONS,
    NEGATIVE,
    NOT_NAMES,
    NUMBER_WORDS,
    OPPOSITE_PREFIXES,
    OPPOSITE_PREPS,
    ORDINALS,
    PERIOD,
    PERSON_FORMS,
    PERSONS,
    PHRASES,
    RELATIVE,
    ROMAN,
    SCALES,
    SCOPE_PREPS,
    SCOPES,
    SEASONS,
    STANCE_NOT_OK,
    STANCE_NOT_OK_PAIRS,
    STANCE_OK,
    STANCE_OK_PAIRS,
    STOP,
    TIME_UNITS,
    TOKEN,
    WH,
)


@dataclass(frozen=True, slots=True)
class Features:
    """What the guards compare, extracted once per text."""

    words: tuple[str, ...]
    wordset: frozenset[str]  # words and their light stems
    negated: bool
    numbers: frozenset[str]
    dates: frozenset[str]
    entities: tuple[str, ...]  # canonical names, in order of first mention
    places: frozenset[str]  # the gazetteer's subset of entities
    acronyms: frozenset[str]  # initials of multi-word names and camel-case words
    audiences: frozenset[str]
    qualifiers: frozenset[tuple[str, tuple[str, ...]]]
    wh: frozenset[str]
    content: tuple[str, ...]
    relations: tuple[str, ...]  # words without determiners: what the swap check compares
    # Units written with capitals after a number, by their lower case: "Mb" / "MB", "mW" / "MW"
    # differ although the (uncased) model sees one word.
    cased: frozenset[tuple[str, str]] = frozenset()
    text: str = ""  # as read (whitespace folded): what the symmetric-comparison check swaps


COUNTS = frozenset(NUMBER_WORDS) | frozenset(ORDINALS) | frozenset(MULTIPLIERS)
# word -> the ANTONYMS groups that hold it (opposites(): one lookup per word, not per group)
ANTONYM_GROUPS: dict[str, frozenset[int]] = {}
for _i, _group in enumerate(ANTONYMS):
    for _w in _group:
        ANTONYM_GROUPS[_w] = ANTONYM_GROUPS.get(_w, frozenset()) | {_i}


def features(text: str) -> Features:
    read = " ".join(text.split())
    text = PHRASES.sub(r"\1_\2", read)
    text = MULTIWORD.sub(lambda m: m.group(1).replace(" ", "_"), text)  # "New York" is one word
    lowered = text.lower().replace("\u2019", "'")
    raw = [re.sub(r"['\u2019]s$", "", w) for w in TOKEN.findall(text)]  # "Chrome's" names Chrome
    words = tuple(_split_contraction(w) for w in TOKEN.findall(lowered))
    negated = any(w in NEGATIONS or w.endswith("n't") for w in TOKEN.findall(lowered))
    content = tuple(w for w in words if w not in STOP and w not in NEGATIONS)
    entities, places, acronyms = _entities(raw)
    return Features(
        words=words,
        wordset=frozenset(f for w in words for f in _forms(w)),
        negated=negated,
        numbers=_numbers(raw, words, lowered),
        dates=_dates(raw, words, lowered),
        entities=tuple(entities),
        places=frozenset(places),
        acronyms=frozenset(acronyms),
        audiences=frozenset(AUDIENCES[w] for w in words if w in AUDIENCES),
        qualifiers=_qualifiers(lowered),
        wh=_wh(words),
        content=content,
        relations=tuple(w for w in words if w not in DETERMINERS),
        cased=frozenset(
            (w.lower(), w)
            for i, w in enumerate(raw)
            if i and raw[i - 1][-1:].isdigit() and len(w) <= 4 and w.isalpha() and w != w.lower()
        ),
        text=read,
    )


def _split_contraction(word: str) -> str:
    head, _, tail = word.partition("'")
    return head if tail in ("s", "re", "ve", "ll", "d", "m") else word.replace("'", "")


def _forms(word: str) -> set[str]:
    """The word and its light stems: "included" -> include, "cheapest" -> cheap, "eggs" -> egg."""
    forms = {word}
    endings = (("ies", "y"), ("ier", "y"), ("iest", "y"), ("es", ""), ("s", ""), ("ed", ""))
    for suffix, repl in (*endings, ("ed", "e"), ("d", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            forms.add(word[: -len(suffix)] + repl)
    for suffix in ("ing", "est", "er"):
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= 3:
            forms |= {stem, stem + "e"} | ({stem[:-1]} if stem[-1] == stem[-2] else set())
    return forms


def _numbers(raw: list[str], words: tuple[str, ...], lowered: str) -> frozenset[str]:
    found: set[str] = set()
    for m in DIGITS.finditer(lowered):
        value = (m.group(1) or m.group(3)).replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        scale = {"k": 1000, "m": 10**6, "bn": 10**9}.get(m.group(2) or "")
        # Exact, whatever its length: a float would overflow on 310 digits and raise.
        found.add(str(int(Decimal(value) * scale)) if scale else value)
    for m in NEGATIVE.finditer(lowered):  # "-5 degrees" is not "5 degrees"
        found.add("-" + m.group(1).replace(",", ""))
    run: int | None = None  # a run of number words: "twenty five", "two hundred"
    for word in (*words, ""):
        if word in NUMBER_WORDS:
            run = (run or 0) + NUMBER_WORDS[word]
        elif word in SCALES:
            run = (run or 1) * SCALES[word]
        else:
            if run is not None:
                found.add(str(run))
            run = None
            if word in ORDINALS:
                found.add(str(ORDINALS[word]))
    found |= {str(ROMAN[w]) for w in raw if w in ROMAN}
    return frozenset(found - {"1"})  # "a cup" and "1 cup" are the same question


def _dates(raw: list[str], words: tuple[str, ...], lowered: str) -> frozenset[str]:
    found = {w for w in words if w in DAYS or w in RELATIVE or w in SEASONS}
    found |= {"now" for w in words if w in ("currently", "nowadays")}
    for word in raw:  # "may" and "march" are months only when capitalised
        low = word.lower()
        if low in MONTHS and (low not in ("may", "march") or word[0].isupper()):
            found.add(low)
        elif low in MONTH_ABBR and word[0].isupper():
            found.add(MONTH_ABBR[low])
    found |= {f"{m.group(1)} {m.group(2)}" for m in PERIOD.finditer(lowered)}
    return frozenset(found)


def _entities(raw: list[str]) -> tuple[list[str], set[str], set[str]]:
    """Names in order (consecutive capitalised words are one name), the places among them, and
    the acronyms they could be written as ("machine learning" -> ml, "TypeScript" -> ts)."""
    found: list[str] = []
    places: set[str] = set()
    acronyms: set[str] = set()
    run: list[str] = []
    for i, word in enumerate((*raw, ".")):
        low = word.lower().replace("_", " ")
        name = i < len(raw) and _looks_like_name(word, i == 0) and low not in NOT_NAMES
        if run and (not name or low in GAZETTEER):
            found.append(" ".join(run))
            if len(run) > 1:
                acronyms.add("".join(w[0] for w in run))
            run = []
        if low in GAZETTEER and not (low in CASE_SENSITIVE and word.islower()):
            found.append(GAZETTEER[low])
            if low in SCOPES:
                places.add(GAZETTEER[low])
        elif low in ("u.s", "u.s.a"):
            found.append("us")
            places.add("us")
        elif word in CURRENCIES:
            found.append(CURRENCIES[word])
        elif low in MONTHS or low in DAYS or word in ROMAN:
            pass  # the dates and numbers guards compare these
        elif name:
            run.append(re.sub(r"[^a-z0-9+#]", "", low))
            capitals = "".join(c for c in word if c.isupper()).lower()
            if len(capitals) > 1 and not word.isupper():
                acronyms.add(capitals)
    return list(dict.fromkeys(found)), places, acronyms


def _looks_like_name(word: str, sentence_start: bool) -> bool:
    if len(word) > 1 and word.isupper() and word.isalpha():
        return True  # acronym
    if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
        return True  # GPT-4, PS5
    if word[1:] != word[1:].lower():
        return True  # iPhone, macOS, OpenAI
    return word[0].isupper() and not sentence_start and word.lower() not in STOP


def _qualifiers(lowered: str) -> frozenset[tuple[str, tuple[str, ...]]]:
    """(preposition, the content words of its object up to a break): ("for", ("office", "party"))"""
    found = set()
    for clause in BREAKS.split(lowered):
        words = [_split_contraction(w) for w in TOKEN.findall(clause or "")]
        for i, word in enumerate(words):
            if word not in SCOPE_PREPS:
                continue
            rest: list[str] = []
            for w in words[i + 1 :]:
                if w in SCOPE_PREPS or (w in STOP and w not in DETERMINERS):
                    break
                if w not in DETERMINERS and not w.isdigit():
                    rest.append(w)
            if rest and rest[0] not in IDIOMS:
                found.add((word, tuple(rest[:3])))
    return frozenset(found)


def _wh(words: tuple[str, ...]) -> frozenset[str]:
    found = {WH[w] for w in words if w in WH}
    padded = (*words, "", "")
    for i, word in enumerate(words):
        if word == "how":  # "how was it discovered" is not "who discovered it"
            kind = HOW.get(padded[i + 1], "manner")
            if kind == "amount" and padded[i + 2] in TIME_UNITS:
                kind = "duration"  # "how many days" / "how much time" is "how long"
            found.add(kind)
    return frozenset(found)


# --- the guards: (a, b) -> True when they tell the texts apart ------------------------------


def stance(a: Features, b: Features) -> bool:
    """One asks whether something is all right ("is it okay to ...?", "is it safe ...?"), the
    other whether it is not ("should I avoid ...?", "is it a bad idea ...?"): a yes to one is
    a no to the other, however much else is reworded. A hard veto of the verifier paths
    (cache.semantic), not a pair feature of the trained verifier."""
    return _stance(a) * _stance(b) < 0


def _stance(f: Features) -> int:
    pairs = set(zip(f.words, f.words[1:], strict=False))
    ok = bool(f.wordset & STANCE_OK) or bool(pairs & STANCE_OK_PAIRS)
    not_ok = bool(f.wordset & STANCE_NOT_OK) or bool(pairs & STANCE_NOT_OK_PAIRS)
    said = int(ok and not not_ok) - int(not_ok and not ok)
    return -said if f.negated else said


def negation(a: Features, b: Features) -> bool:
    return a.negated != b.negated


def polarity(a: Features, b: Features) -> bool:
    only_a, only_b = a.wordset - b.wordset, b.wordset - a.wordset
    for group in ANTONYMS:
        if (only_a & group) and (only_b & group) and not (only_a & only_b & group):
            return True
    if _prefixed(only_a, b.wordset) or _prefixed(only_b, a.wordset):
        return True
    return _opposite_prefixes(only_a, only_b)


def opposites(a: str, b: str) -> bool:
    """Two different words the lexicon calls opposites ("allow" / "block"), negations of each
    other ("install" / "uninstall"), different time units ("minutes" / "hours") or different
    numbers ("double" / "triple")."""
    fa, fb = frozenset(_forms(a)), frozenset(_forms(b))
    if fa & fb:
        return False
    groups_a = frozenset().union(*(ANTONYM_GROUPS.get(w, frozenset()) for w in fa))
    if groups_a & frozenset().union(*(ANTONYM_GROUPS.get(w, frozenset()) for w in fb)):
        return True
    if (fa & TIME_UNITS) and (fb & TIME_UNITS):
        return True
    if any(w in COUNTS for w in fa) and any(w in COUNTS for w in fb):
        return True  # two different numbers in words: "double" / "triple", "first" / "third"
    return _prefixed(fa, fb) or _prefixed(fb, fa) or _opposite_prefixes(fa, fb)


def _opposite_directions(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """The same word after opposite prepositions: "travel to the UK" / "travel from the UK",
    "bring food into Australia" / "out of Australia"."""
    before = {w: x[i - 1] for i, w in enumerate(x) if i and w not in STOP}
    for j, w in enumerate(y):
        if j and w in before and frozenset({before[w], y[j - 1]}) in OPPOSITE_PREPS:
            return True
    return False


def _opposite_prefixes(only_a: frozenset[str], only_b: frozenset[str]) -> bool:
    """ "overweight" / "underweight", "hyperthyroidism" / "hypothyroidism": one stem, opposite
    prefixes."""
    for one, other in OPPOSITE_PREFIXES:
        for x, y in ((only_a, only_b), (only_b, only_a)):
            stems = {w[len(one) :] for w in x if w.startswith(one) and len(w) - len(one) >= 3}
            if stems and any(w.startswith(other) and w[len(other) :] in stems for w in y):
                return True
    return False


def _prefixed(words: frozenset[str], other: frozenset[str]) -> bool:
    """ "uninstall" / "install", "non-refundable" / "refundable", "unpin" / "pin"."""
    for word in words:
        for prefix in NEGATING_PREFIXES:
            stem = word[len(prefix) :].lstrip("-")
            shortest = 3 if prefix in ("un", "dis", "non") else 4
            if word.startswith(prefix) and len(stem) >= shortest and stem in other:
                return True
    return False


def numbers(a: Features, b: Features) -> bool:
    return a.numbers != b.numbers


def dates(a: Features, b: Features) -> bool:
    return a.dates != b.dates


def entities(a: Features, b: Features) -> bool:
    only_a, only_b = _unnamed(a, b), _unnamed(b, a)
    if only_a and only_b:
        return True  # a substitution: EU / US, Python / Java
    forms = dict(a.cased)
    if any(
        low in forms and forms[low] != form for low, form in b.cased if (low, form) not in a.cased
    ):
        return True  # 100 Mb / 100 MB, 10 mW / 10 MW
    # One text names a place or platform the other does not mention at all.
    return bool((only_a & a.places) or (only_b & b.places))


def _unnamed(x: Features, y: Features) -> set[str]:
    """Names of ``x`` that ``y`` has in no form: not as a name, not word by word, not as an
    acronym or the expansion of one."""
    initials = {"".join(w[0] for w in e.split()) for e in y.entities if " " in e}
    return {
        e
        for e in set(x.entities) - set(y.entities)
        if not all(w in y.wordset for w in e.split())
        and e not in y.acronyms
        and e not in initials
        and not (" " in e and "".join(w[0] for w in e.split()) in y.entities)
    }


def order(a: Features, b: Features) -> bool:
    """Two things exchanged that a question relates one way round ("convert A to B" / "B to
    A"), unless the exchange is of the two things a comparison compares ("the difference
    between baking soda and baking powder" / "how do baking powder and baking soda differ")
    or a choice names ("which is older, the Colosseum or the Parthenon")."""
    if not _order(a, b):
        return False
    return not _compared(a, b)


def _order(a: Features, b: Features) -> bool:
    shared_a = [e for e in a.entities if e in b.entities]
    short = max(len(a.content), len(b.content)) <= LONG_TEXT
    if short and len(shared_a) >= 2 and shared_a != [e for e in b.entities if e in a.entities]:
        return True  # long statements reorder their clauses freely
    if short and _opposite_directions(a.relations, b.relations):
        return True  # long statements say "from" and "to" about one thing in many ways
    x, y = _roles(a.relations), _roles(b.relations)  # folded once for both swap checks
    every = len(a.words) == len(b.words)  # an exchange of words keeps the length
    return (
        _swapped(x, y)
        or (every and _transposed(a.words, b.words))
        or (every and _exchanged(_roles(a.words), _roles(b.words)))
        or _exchanged(x, y)
        or _phrases_swapped(x, y)
        or _coordination_swapped(a.relations, b.relations)
        or (short and _spans_swapped(x, y))
    )


# A comparison: what it compares may come in either order. Not "between" alone ("the percent
# change between the old and the new price", "directions between the station and the
# hotel"), nor "vs" alone ("plot revenue vs time"): red-team pairs (eighth session).
COMPARISON = re.compile(r"\b(?:differ\w*|compar\w*|similar\w*|alike|apart|distinguish\w*)\b", re.I)
COMPARED_BY = frozenset({"and", "vs", "versus", "or"})
# A choice between two: "Which is healthier, brown rice or white rice?", "Is it better to rent
# or buy?" (traps_eighteenth, read once, fifteenth session): the two things joined by "or".
CHOICE = re.compile(
    r"\b(?:which|better|worse|best|worst|more|less|rather|prefer\w*|choose|pick)\b", re.I
)
CHOSEN_BY = frozenset({"or"})
CLAUSE_END = re.compile(r"[?,.!:;]+$")
# Words that point at one of the two by its place: "... can I roll money from the first into
# the second?" (a red team's, fifteenth session): then the order is part of the question.
BY_PLACE = re.compile(r"\b(?:first|second|former|latter|respectively|vice versa)\b", re.I)


def _compared(a: Features, b: Features) -> bool:
    """``a`` or ``b`` names a comparison (or a choice), nothing points at one of the two by
    its place, and exchanging the two phrases (one to four words each) it joins by "and",
    "or", "vs" or "versus" (a choice: by "or") makes the texts agree in order: "the
    difference between a bank and a credit union" / "... between a credit union and a
    bank". Run only when ``_order`` objects, on the texts as read."""
    if COMPARISON.search(a.text) or COMPARISON.search(b.text):
        joins = COMPARED_BY
    elif CHOICE.search(a.text) or CHOICE.search(b.text):
        joins = CHOSEN_BY  # "Which is healthier, brown rice or white rice?"
    else:
        return False
    if BY_PLACE.search(a.text) or BY_PLACE.search(b.text):
        return False
    return any(
        _agree(x, b.text) and not _order(features(x), b) for x in _exchanges(a.text, joins)
    ) or any(_agree(a.text, y) and not _order(a, features(y)) for y in _exchanges(b.text, joins))


def _agree(x: str, y: str) -> bool:
    """The content words ``x`` and ``y`` share come in the same order in both ("a new Toyota
    Camry and a used Tesla Model 3" / "a new Tesla Model 3 and a used Toyota Camry" do not; a
    red team's, fifteenth session: agreeing in the exchanged phrases' words alone let "a
    15-year mortgage at 6% and a 30-year mortgage at 7%" / "... at 7% ... at 6%" through)."""
    tx, ty = _content(x), _content(y)
    shared = set(tx) & set(ty)
    return [w for w in tx if w in shared] == [w for w in ty if w in shared]


def _content(text: str) -> list[str]:
    return [_role(w) for w in TOKEN.findall(text.lower()) if w not in STOP]


def _exchanges(text: str, joins: frozenset[str]) -> Iterator[str]:
    """``text`` with the phrases around one of its coordinators (``joins``) exchanged, every
    way (the phrases end at a clause's end; the punctuation stays where it was)."""
    words = text.split()
    for k, word in enumerate(words):
        if word.lower() not in joins or not 0 < k < len(words) - 1:
            continue
        for la in range(1, min(4, k) + 1):
            left = words[k - la : k]
            if any(CLAUSE_END.search(w) for w in left) or not _phrase(left):
                continue
            for lb in range(1, min(4, len(words) - k - 1) + 1):
                right = words[k + 1 : k + 1 + lb]
                if any(CLAUSE_END.search(w) for w in right[:-1]):
                    continue
                mark = CLAUSE_END.search(right[-1])
                tail = mark.group(0) if mark else ""
                last = right[-1][: len(right[-1]) - len(tail)]
                if not last or not _phrase([*right[:-1], last]):
                    continue
                moved = [*right[:-1], last, word, *left[:-1], left[-1] + tail]
                yield " ".join([*words[: k - la], *moved, *words[k + 1 + lb :]])


def _phrase(words: list[str]) -> bool:
    """A thing compared: no function word but a determiner at its start ("a credit union",
    not "a 30-year mortgage at")."""
    lowered = [w.lower() for w in words]
    return all(w not in STOP or (i == 0 and w in DETERMINERS) for i, w in enumerate(lowered))


# Words that relate what stands before them to what stands after, one way round: "convert
# A to B", "A before B", "A rather than B", "prefer A over B".
ORDER_PIVOTS = frozenset({"to", "into", "than", "before", "after", "instead", "over"})


def _spans_swapped(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """Past their shared start and end, ``x`` reads "A pivot B" where ``y`` reads "B pivot
    A", A and B any words, compared without "-ing" / "-ed": "convert miles per gallon to
    liters per 100 km" / "convert liters per 100 km to miles per gallon", "paint the walls
    before installing new floors" / "install new floors before painting the walls", "convert
    my LLC to an S corp" / "my S corp to an LLC" (a fresh held-out set, twelfth session).
    ``_phrases_swapped`` sees phrases of two words at most. ``x`` and ``y`` are folded by
    ``_roles``; short texts only (``order``)."""
    mx, my = _middles(x, y)
    if len(mx) != len(my) or len(mx) < 3:
        return False
    sx, sy = tuple(map(_unsuffixed, mx)), tuple(map(_unsuffixed, my))
    for k, pivot in enumerate(sx):
        if pivot not in ORDER_PIVOTS or not 0 < k < len(sx) - 1:
            continue
        left, right = sx[:k], sx[k + 1 :]
        if left != right and sy == (*right, pivot, *left):
            return True
    return False


def _middles(x: tuple[str, ...], y: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``x`` and ``y`` past the words they start and end with alike."""
    start = 0
    while start < min(len(x), len(y)) and x[start] == y[start]:
        start += 1
    end = 0
    while end < min(len(x), len(y)) - start and x[-1 - end] == y[-1 - end]:
        end += 1
    return x[start : len(x) - end], y[start : len(y) - end]


def _unsuffixed(word: str) -> str:
    """ "painting" -> "paint", "installed" -> "install": one verb in its forms."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    return word


COORDINATORS = frozenset({"and", "or", "vs", "versus", "by", "then", "over"})


def _coordination_swapped(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """``x`` joins two phrases of one to three words ("zip code and city", "priority and due
    date", "boys and girls") that ``y`` joins the other way round, and ``x`` never in that
    order: a sort key, a ratio, a cross product or a join depends on which comes first (a
    red-team pass, eighth session). ``_swapped`` sees single words only, at their last place."""
    padded_x, padded_y = f" {' '.join(x)} ", f" {' '.join(y)} "
    for k, word in enumerate(x):
        if word not in COORDINATORS:
            continue
        for l1 in range(1, 4):
            for l2 in range(1, 4):
                left, right = x[max(0, k - l1) : k], x[k + 1 : k + 1 + l2]
                if len(left) < l1 or len(right) < l2 or left == right:
                    continue
                if any(w in STOP or w in COORDINATORS for w in (*left, *right)):
                    continue
                there = f" {' '.join((*right, word, *left))} "
                if there in padded_y and there not in padded_x:
                    return True
    return False


def _swapped(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """``x`` reads "P M Q" where ``y`` reads "Q M P" (P, Q content words or persons, M the same
    1-4 words): "dog smarter than cat" / "cat smarter than dog", "teaspoons in a tablespoon" /
    "tablespoons in a teaspoon" (plurals folded), "can I sue my employer" / "can my employer sue
    me" (I, me, my are one person); reordered paraphrases ("last git commit" / "last commit in
    git") change M as well. ``x`` and ``y`` are folded by ``_roles``. P and Q at their last
    place in ``y``, or at any place if ``x`` never reads "Q M P" and ``y`` never "P M Q" (a text
    repeats its words: "he loves me ... I love him"): "my friend owes me $50 ... what should I
    do" / "I owe my friend $50 ... what should I do" (a fresh held-out set, thirteenth session:
    the last "I" of ``y`` hid its first)."""
    where: dict[str, list[int]] = {}
    for k, w in enumerate(y):
        where.setdefault(w, []).append(k)
    for i, p in enumerate(x):
        if _stop(p) or p not in where:
            continue
        for j in range(i + 2, min(len(x), i + 6)):
            q = x[j]
            if _stop(q) or q == p or q not in where:
                continue
            yq, yp = where[q][-1], where[p][-1]
            if yq < yp and x[i + 1 : j] == y[yq + 1 : yp]:
                return True
            pmq, qmp = x[i : j + 1], (q, *x[i + 1 : j], p)
            if set(pmq[1:-1]) <= COORDINATORS:
                continue  # "Tom and Summer" / "Summer and Tom": _coordination_swapped's
            if any(y[k : k + len(qmp)] == qmp for k in where[q]) and not (
                _holds(x, qmp) or _holds(y, pmq)
            ):
                return True
    return False


def _transposed(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """``y`` is ``x`` with two words, not side by side, exchanged and nothing else changed, one
    of them at least not a function word, however far apart: "type O blood ... to someone
    with type A" / "type A blood ... type O" (a fresh held-out set, thirteenth session: seven
    words apart, and "A" a determiner, which ``_swapped`` does not see). Compared on every
    word, determiners too."""
    if len(x) != len(y):
        return False
    diff = [k for k, (u, v) in enumerate(zip(x, y, strict=True)) if u != v]
    if len(diff) != 2 or diff[1] - diff[0] < 2:
        return False
    i, j = diff
    return x[i] == y[j] and x[j] == y[i] and not (_stop(x[i]) and _stop(x[j]))


# The longest span ``_exchanged`` moves: a name or a noun phrase, not a clause.
EXCHANGED_SPAN = 6
# Words that stand for a span elsewhere: "is jailbreaking worth it" / "is it worth
# jailbreaking" moves the thing and its placeholder, not two things.
PLACEHOLDERS = frozenset({"it", "this", "that", "there", "they", "them"})


def _exchanged(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """Past their shared start and end, ``x`` reads "A M B" where ``y`` reads "B M A", A and B
    spans of up to ``EXCHANGED_SPAN`` words, M not only "and" / "or" and determiners, and
    nothing else changed: "can high blood pressure cause kidney disease" / "can kidney disease
    cause high blood pressure", "Medicare pay first and my employer's plan pay second" / "my
    employer's plan pay first and Medicare pay second", "a B on the midterm and an A on the
    final" / "an A on the midterm and a B on the final", "a parent pay for their adult child's
    care" / "an adult child pay for their parent's care" (a fresh held-out set, thirteenth
    session). ``_spans_swapped`` needs a pivot word for M, ``_phrases_swapped`` phrases of two
    words. ``order`` compares every word (the letter grades) and the words without determiners
    ("a parent" / "an adult child"), both folded by ``_roles``. Since the fifteenth session M
    may be empty where A and B only name things (``_thing``): "feed my dog cat food" / "my cat
    dog food", "are all integers rational numbers" / "are all rational numbers integers" (a
    fresh held-out set, read once); not "politely decline" / "decline politely"."""
    if len(x) != len(y):
        return False
    mx, my = _middles(x, y)
    n = len(mx)
    for la in range(1, min(EXCHANGED_SPAN, n - 1) + 1):
        for lb in range(1, min(EXCHANGED_SPAN, n - la) + 1):
            a, m, b = mx[:la], mx[la : n - lb], mx[n - lb :]
            if a == b or my != (*b, *m, *a):
                continue
            if m and all(w in COORDINATORS or w in DETERMINERS for w in m):
                continue  # "a will and a trust" / "a trust and a will": _coordination_swapped's
            if set(a) <= PLACEHOLDERS or set(b) <= PLACEHOLDERS:
                continue
            if not m and not all(_thing(w) for w in (*a, *b)):
                continue  # side by side, only things: "why is Delhi" / "why Delhi is" moves a verb
            if not all(_stop(w) for w in (*a, *b)):
                return True
    return False


def _thing(word: str) -> bool:
    """A word that can name a thing ("dog", "integers"), not a function word, a manner
    ("politely") or a verb's form ("cooked", "updating")."""
    return (
        not _stop(word)
        and word.isalpha()  # "IPL 2015" / "2015 IPL"
        and not word.endswith(("ly", "ed", "ing"))
        and word not in PERSON_FORMS
    )


def _phrases_swapped(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
    """``x`` reads "P M Q" where ``y`` reads "Q M P", and ``x`` never "Q M P", with P or Q a
    phrase of two words: "turn dict into json string" / "turn json string into dict", "brown
    rice have more fiber than white rice" / "white rice ... than brown rice" (a fresh held-out
    set, eleventh session). ``_swapped`` sees single words only. ``x`` and ``y`` are folded by
    ``_roles``."""
    at_y: dict[str, list[int]] = {}
    for k, w in enumerate(y):
        at_y.setdefault(w, []).append(k)
    # Most pairs keep their shared words in one order, each said once in y: then nothing is
    # swapped, and the search below is skipped.
    shared = [at_y[w] for w in x if w in at_y and not _stop(w)]
    if all(len(k) == 1 for k in shared) and all(
        a[0] <= b[0] for a, b in itertools.pairwise(shared)
    ):
        return False
    for i in range(len(x)):
        for lp in (1, 2):
            p = x[i : i + lp]
            if len(p) < lp or any(_stop(w) for w in p):
                continue
            starts = [k for k in at_y.get(p[0], ()) if y[k : k + lp] == p]
            if not starts:
                continue
            for m in range(1, 5):
                middle = x[i + lp : i + lp + m]
                for lq in (1, 2) if lp == 2 else (2,):
                    q = x[i + lp + m : i + lp + m + lq]
                    if len(middle) < m or len(q) < lq or p == q or any(_stop(w) for w in q):
                        continue
                    before = (*q, *middle)
                    found = any(
                        k >= len(before) and y[k - len(before) : k] == before for k in starts
                    )
                    if found and not _holds(x, (*before, *p)):
                        return True
    return False


def _holds(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    n = len(part)
    return any(words[k : k + n] == part for k in range(len(words) - n + 1))


def _stop(word: str) -> bool:
    """A word no swap is made of: a function word, but a person ("I", "my") counts."""
    return word in STOP and word not in PERSON_FORMS


def _roles(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_role(w) for w in words)


def _role(word: str) -> str:
    """A word as the swap check compares it: a person's every case as one ("me", "my" -> "i"),
    a plural as its singular ("teaspoons" -> "teaspoon")."""
    if word in PERSONS:
        return PERSONS[word]
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def scope(a: Features, b: Features) -> bool:
    if a.audiences != b.audiences:
        return True
    if max(len(a.content), len(b.content)) > LONG_TEXT:
        # Long statements rephrase their qualifiers ("in a few lines" / "with a few lines"):
        # only the same preposition with another object on both sides counts.
        preps = {p for p, _ in a.qualifiers} & {p for p, _ in b.qualifiers}
        return any(_unmatched(a, b, p) and _unmatched(b, a, p) for p in preps)
    return _unmatched(a, b) or _unmatched(b, a)


def _unmatched(x: Features, y: Features, prep: str | None = None) -> bool:
    """A qualifier of ``x`` (with ``prep``) with a word that ``y`` does not have in any form."""
    return any(
        not (_forms(w) & y.wordset) and GAZETTEER.get(w) not in y.entities
        for p, words in x.qualifiers
        if prep is None or p == prep
        for w in words
    )


def question(a: Features, b: Features) -> bool:
    # "how do I find X" and "where do I find X" ask the same thing; who/when/why do not.
    wa, wb = (
        {"where" if w == "manner" else w for w in a.wh},
        {"where" if w == "manner" else w for w in b.wh},
    )
    return bool(wa) and bool(wb) and wa != wb


GUARDS: tuple[tuple[str, Callable[[Features, Features], bool]], ...] = (
    ("negation", negation),
    ("polarity", polarity),
    ("numbers", numbers),
    ("dates", dates),
    ("entities", entities),
    ("order", order),
    ("scope", scope),
    ("question", question),
)


def first_difference(a: str | Features, b: str | Features) -> str | None:
    """The name of the first guard that tells ``a`` and ``b`` apart; None: no guard objects."""
    fa = a if isinstance(a, Features) else features(a)
    fb = b if isinstance(b, Features) else features(b)
    for name, guard in GUARDS:
        if guard(fa, fb):
            return name
    return None
