"""The edit between a cached question and an asked one: what changed, and how much.

When to use: ``SemanticLibrary.lookup`` asks ``edit(cached, asked)`` of each candidate (and of
a follow-up's two contexts) before the verifier runs. A ``trivial`` edit is served without the
verifier; a ``local`` one is refused; ``function`` and ``broad`` ones go to the verifier.

Policy: near-miss traps written by people the cache never saw (data/cache_eval/traps_third,
traps_fourth) change one to three words inside an otherwise identical question: "eat" /
"avoid", "allowed" / "forbidden", "succeeds" / "fails", "only the tests" / "all tests
except", "every 5 minutes" / "every 5 hours". The verifier, trained on generated traps, let
2.5-3.3% of them through; no lexicon can list every opposite, but the shape of the edit is
plain. So:

- ``trivial``: nothing changed but case, punctuation, a greeting or a "please" / "thanks" at
  either end, "u" / "you", contractions, "How do I" / "How can I" / "how to", a compound
  written apart or together, British / American spelling, a word's inflection, or a typo of a
  known word (one letter added, dropped, changed or two swapped, where only one side is a word
  the model's vocabulary knows): the same question. Served without the verifier, which
  refused 10-20% of such near-repeats.
- ``local``: one to three words swapped, added or removed inside a question whose other words
  are the same (at least three of them, and at least half of the shorter side), and at least
  one of the changed words is not a function word (cache.lexicon.EDIT_FUNCTION): a near miss.
  Refused. The price is a one-word synonym swap ("good" / "nice", "earn" / "make"), which
  Quora's duplicates hold many of (docs/caching.md).
- ``function``: the same, but only function words changed ("in" / "on Linux", "my"): the
  verifier decides, as before.
- ``broad``: a rewording: the verifier decides.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from cache.embedder import known_words
from cache.guards import _forms, opposites
from cache.lexicon import (
    EDIT_FUNCTION,
    EDIT_IRREGULAR,
    EDIT_KEEPS_IS,
    EDIT_SHORTHAND,
    EDIT_SPELLINGS,
    EDIT_STEM_SUFFIXES,
)
from cache.synonyms import load as load_synonyms
from cache.synonyms import share_sense

Kind = Literal["trivial", "local", "synonym", "function", "broad"]
STEM_SUFFIXES = EDIT_STEM_SUFFIXES
LOCAL_WORDS = 3  # changed words on either side, at most, for a local edit
LOCAL_SAME = 3  # unchanged words, at least
LEAD = re.compile(
    r"^(\W*\b(hey|hi|hello|so|ok|okay|quick (question|q)|(can|could|would) (you|u)|please|pls"
    r"|plz)\b[\s,:!.-]*)+"
)
TAIL = re.compile(
    r"([\s,.!?:;-]*\b((pls|please) help|help pls|please|pls|plz|thanks( a lot| so much)?"
    r"( in advance)?|thank (you|u)( so much)?( in advance)?|thx|ty|tysm|cheers)\b[\s.!?]*)+$"
)
IRREGULAR_NOT = re.compile(r"\b(won't|can't|shan't|ain't)")
NOT_FORMS = {"won't": "will not", "can't": "cannot", "shan't": "shall not", "ain't": "is not"}
HOW_TO = re.compile(r"\bhow (do|can|should|would) (i|you|we|one)\b|\bhow does one\b")
CONTRACTIONS = {"re": " are", "m": " am", "ll": " will", "ve": " have", "d": " would"}
# "what's" is "what is"; "the kid's party" is about the kid ("'s" dropped).
KEEPS_IS = EDIT_KEEPS_IS
WORD = re.compile(r"\d+(?:[.,]\d+)*%?|[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Edit:
    kind: Kind
    removed: tuple[str, ...] = ()  # the cached side's changed words
    added: tuple[str, ...] = ()  # the asked side's


@functools.cache
def _known() -> frozenset[str]:
    """The embedding model's whole-word vocabulary (about 20,000 words): a typo of a word is
    rarely in it. Empty when the tokenizer is not installed: typos then count as changes."""
    try:
        return known_words()
    except (ImportError, OSError, ValueError, RuntimeError):
        return frozenset()


def warm_edits() -> None:
    """Load the vocabulary and the WordNet senses (start-up, not the first request)."""
    _known()
    load_synonyms()


def known(word: str) -> bool:
    vocabulary = _known()
    return any(form in vocabulary for form in _forms(word))


@functools.lru_cache(maxsize=8192)
def words(text: str) -> tuple[str, ...]:
    """The question's words, normalised: lower case, no greeting or "please" at either end,
    contractions and shorthand spelled out, "how do I" as "how to", American spelling."""
    t = text.lower().replace("\u2019", "'").strip()
    t = TAIL.sub(" ", LEAD.sub(" ", t))
    t = HOW_TO.sub("how to", t)
    t = re.sub(r"\bw/o\b", "without", re.sub(r"\bb/c\b", "because", t)).replace("w/", "with ")
    t = IRREGULAR_NOT.sub(lambda m: NOT_FORMS[m.group(1)], t)
    t = re.sub(r"n't\b", " not", t).replace("can not", "cannot")
    t = re.sub(r"\b(\w+)'s\b", lambda m: m.group(1) + (" is" if m.group(1) in KEEPS_IS else ""), t)
    t = re.sub(r"'(re|m|ll|ve|d)\b", lambda m: CONTRACTIONS[m.group(1)], t)
    out: list[str] = []
    for w in WORD.findall(t):
        out.extend(_american(EDIT_IRREGULAR.get(x, x)) for x in EDIT_SHORTHAND.get(w, w).split())
    return tuple(out)


def _american(word: str) -> str:
    """ "colour" -> "color", "organise" -> "organize", when the result is a known word."""
    if len(word) < 6 or not word.isalpha():
        return word
    for british, american in EDIT_SPELLINGS:
        i = word.rfind(british)
        if i > 0 and (british == "our" or word.endswith(british)):
            spelled = word[:i] + american + word[i + len(british) :]
            if spelled != word and known(spelled):
                return spelled
    return word


def _typo(a: str, b: str) -> bool:
    """One letter added, dropped or changed, or two neighbours swapped (Damerau distance 1),
    after the first letter, and only one of the two is a known word: "recieve" / "receive",
    never "form" / "from" or "ethanol" / "methanol"."""
    if min(len(a), len(b)) < 4 or not (a.isalpha() and b.isalpha()) or known(a) == known(b):
        return False
    if a[0] != b[0]:
        return False  # a typo rarely hits the first letter: "ethanol" / "methanol"
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and (a[diff[0]], a[diff[1]]) == (b[diff[1]], b[diff[0]])
        )
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


def same_word(a: str, b: str) -> bool:
    """One word: inflected ("eggs" / "egg"), derived ("meditation" / "meditating") or
    mistyped."""
    return a == b or bool(_forms(a) & _forms(b)) or _stem(a) == _stem(b) or _typo(a, b)


def _stem(word: str) -> str:
    """A crude derivational stem, for words of 7 letters or more: "meditation" and
    "meditating" -> "meditat"; shorter words keep their form ("organ" is not "organic")."""
    if len(word) < 7:
        return word
    for suffix in STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 5:
            return word[: -len(suffix)]
    return word


def _explained(removed: list[str], added: list[str]) -> bool:
    """The changed content words pair up as one word or as synonyms (cache.synonyms), never
    as the guards' opposites or units."""
    if len(removed) != len(added):
        return False
    return any(
        all(_alike(a, b) for a, b in zip(removed, order, strict=True))
        for order in itertools.permutations(added)
    )


@functools.lru_cache(maxsize=65536)
def _alike(a: str, b: str) -> bool:
    if same_word(a, b):
        return True
    if opposites(a, b):
        return False
    return share_sense(a, b)


def edit(cached: str, asked: str) -> Edit:
    """How ``asked`` differs from ``cached`` (module docstring)."""
    x, y = words(cached), words(asked)
    same = 0
    removed: list[str] = []
    added: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, x, y, autojunk=False).get_opcodes():
        xa, ya = x[i1:i2], y[j1:j2]
        if op == "equal" or (
            op == "replace" and len(xa) == len(ya) and all(map(same_word, xa, ya))
        ):
            same += len(xa)
        elif xa and ya and all(w.isalpha() for w in xa + ya) and "".join(xa) == "".join(ya):
            same += min(len(xa), len(ya))  # "litter box" / "litterbox", "set up" / "setup"
        else:
            removed += xa
            added += ya
    moved = Counter(removed) & Counter(added)  # "the tallest mountain" / "which mountain"
    removed = list((Counter(removed) - moved).elements())
    added = list((Counter(added) - moved).elements())
    same += sum(moved.values())
    if not removed and not added:
        # Words only moved: "Paris to Rome" / "Rome to Paris" is no repeat (the order guard).
        return Edit("function" if moved else "trivial")
    changed = max(len(removed), len(added))
    if changed > LOCAL_WORDS or same < LOCAL_SAME or same < 0.5 * min(len(x), len(y)):
        return Edit("broad", tuple(removed), tuple(added))
    content_removed = [w for w in removed if w not in EDIT_FUNCTION]
    content_added = [w for w in added if w not in EDIT_FUNCTION]
    if not content_removed and not content_added:
        return Edit("function", tuple(removed), tuple(added))
    if _explained(content_removed, content_added):
        return Edit("synonym", tuple(removed), tuple(added))
    return Edit("local", tuple(removed), tuple(added))
