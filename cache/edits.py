"""The edit between a cached question and an asked one: what changed, and how much.

When to use: ``SemanticLibrary.lookup`` asks ``edit(cached, asked)`` of each candidate (and of
a follow-up's two contexts) before the verifier runs. A ``trivial`` edit is served without the
verifier; a ``local`` one is refused; ``synonym``, ``function`` and ``broad`` ones go to the
verifier.

Policy: near-miss traps written by people the cache never saw (data/cache_eval/traps_third
to traps_seventh) change one to three words inside an otherwise identical question: "eat" /
"avoid", "allowed" / "forbidden", "succeeds" / "fails", "only the tests" / "all tests
except", "every 5 minutes" / "every 5 hours". The verifier, trained on generated traps, let
0.8-3.8% of them through; no lexicon can list every opposite, but the shape of the edit is
plain. A red-team pass then showed what normalising must never erase (a tense, "-er" and
"-ing" forms, "a typical" / "atypical", "C++" / "C", a change of person). So:

- ``trivial``: nothing changed but case, punctuation, a greeting, a filler ("um", "lol",
  "any help appreciated") or a "please" / "thanks" at either end (the same on both sides if
  both have one), chat and unit shorthand, contractions, "How do I" / "How can I" / "how
  to", a compound written apart or together (or with a hyphen, from a closed list: "wi-fi"),
  "%" / "percent", a word stretched for emphasis ("sooo"), British / American spelling
  ("litre", "travelled", "anaemia": where WordNet gives both a shared sense), an aside after
  the question ("asking for a friend", "...? help"), or a
  typo (a neighbouring key or two letters swapped, not the first letter, where
  only one side is a word the model's vocabulary or WordNet knows). Served without the
  verifier, which refused 10-20% of such near-repeats.
- ``local``: one to three words swapped, added or removed inside a question whose other words
  are the same (at least two of them, and half of the shorter side), and a changed word is a
  content word (not cache.lexicon.EDIT_FUNCTION) that is no synonym, plural or "-ation" /
  "-ing" form of one on the other side; or function words swapped one for one that
  EDIT_SWAPS does not allow ("should" / "can", "and" / "or", "is" / "was"); or a change of
  person ("How do you store my data?" / "How do I ..."). A near miss: refused. The price is a
  synonym swap neither WordNet nor the hand-written list knows ("good" / "nice"), which
  Quora's duplicates hold many of (docs/caching.md).
- ``synonym``: the same, but every changed content word is a synonym (cache.synonyms), a
  plural or a derived form of one on the other side: the verifier decides.
- ``function``: only function words added, dropped or reworded ("my garden tools", "What is
  X?" / "What does X mean?"), or words only moved ("Paris to Rome" / "Rome to Paris": the
  order guard): the verifier decides.
- ``broad``: a rewording: the verifier decides.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cache.embedder import known_words
from cache.guards import _forms, opposites
from cache.lexicon import (
    EDIT_BRITISH,
    EDIT_DOUBLED_L,
    EDIT_ENDINGS_SENSED,
    EDIT_FUNCTION,
    EDIT_IRREGULAR,
    EDIT_KEEPS_IS,
    EDIT_NOT_BRITISH,
    EDIT_SHORTHAND,
    EDIT_SPELLINGS,
    EDIT_SPELLINGS_SENSED,
    EDIT_STEM_SUFFIXES,
    EDIT_SWAPS,
)
from cache.synonyms import load as load_synonyms
from cache.synonyms import share_sense, wordnet_words

# Each letter's neighbours on a QWERTY keyboard: a one-letter slip hits one of them.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD = {
    c: "".join(
        r2[j]
        for r2 in _ROWS[max(0, i - 1) : i + 2]
        for j in range(max(0, k - 1), min(len(r2), k + 2))
        if r2[j] != c
    )
    for i, row in enumerate(_ROWS)
    for k, c in enumerate(row)
}
Kind = Literal["trivial", "local", "synonym", "function", "broad"]
LOCAL_WORDS = 3  # changed words on either side, at most, for a local edit
LOCAL_SAME = 2  # unchanged words, at least ("Who owns Twitter?" / "Who owned Twitter?")
LEAD = re.compile(
    r"^(\W*\b(hey|hi|hello|so|ok|okay|quick (question|q)|please|pls|plz|um+|uh+|hmm+|well(?=,)"
    r"|lol|lmao|haha|ha"
    r"|just (wondering|curious)|random (question|q)|question(?=:))\b"
    r"[\s,:!.-]*)+"
)
TAIL = re.compile(
    r"([\s,.!?:;-]*\b((pls|please) help|help pls|please|pls|plz|thanks( a lot| so much)?"
    r"( in advance)?|thank (you|u)( so much)?( in advance)?|thx|ty|tysm|cheers"
    r"|(any )?help (is |would be )?(much |greatly |really )?appreciated|please advise"
    r"|any (help|advice|ideas|tips)\??|lol|lmao|haha|help(?=!)|(?<=[.!?] )help|(?<=[.!?])help"
    r"|asking for a friend|just (curious|wondering))\b[\s.!?]*)+$"
)

# Words written with a hyphen or without: a closed list, since "x-ln(x)" is not "xln(x)" and
# "re-sign" is not "resign" (a red-team pass).
HYPHENATED = re.compile(
    r"\b(wi)-(fi)\b|\b(e)-(mail|mails|book|books|commerce)\b|\b(x)-(ray|rays)\b|\b(co)-(worker"
    r"|workers)\b|\b(t)-(shirt"
    r"|shirts)\b|\b(auto)-(correct|fill|save|play)\b|\b(non)-(profit|profits|stick)\b"
    r"|\b(on)-(line)\b|\b(log)-(in)\b|\b(set)-(up)\b|\b(check)-(in|out)\b"
)
# A capitalised word that starts no sentence: a name, spelled as it is (a red team's,
# fifteenth session).
NAME = re.compile(r"(?<=[^.?!\s] )[A-Z][a-z]+")
PERCENT = re.compile(r"(\d)\s*%")  # "20%" / "20 percent"
NUMBER_SIGN = re.compile(r"(?<=\w )#(?=[?.!]*\s*$)")  # "my order #" / "... number", at the end
STRETCHED = re.compile(r"([a-z])\1{2,}")  # "sooo" / "so", "pleeease" / "please"
IRREGULAR_NOT = re.compile(r"\b(won't|can't|shan't|ain't)")
NOT_FORMS = {"won't": "will not", "can't": "cannot", "shan't": "shall not", "ain't": "is not"}
HOW_TO = re.compile(r"\bhow (do|can|should) (i|we)\b|\bhow does one\b")
# "How do you make pancakes?" is "how to"; "How do you store my data?" asks the assistant.
HOW_DO_YOU = re.compile(r"\bhow (do|can) you\b")
FIRST_PERSON = re.compile(r"\b(my|me|mine|i|our|us|we)\b")
PERSONS = frozenset(["i", "me", "my", "mine", "we", "us", "our", "ours", "you", "your", "yours"])
SECOND_PERSON = frozenset({"you", "your", "yours"})
PARTICLES = frozenset({"up", "out", "off", "down", "over"})  # "set up" / "setup"
CONTRACTIONS = {"re": " are", "m": " am", "ll": " will", "ve": " have", "d": " would"}
# Words, with what makes them another word: "c++", "c#", "a+" / "o-" (blood types), "-10".
WORD = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)*%?|[a-z0-9]+(?:\+\+|[+#]|-(?=[\s,.?!]|$))?")


@dataclass(frozen=True, slots=True)
class Edit:
    kind: Kind
    removed: tuple[str, ...] = ()  # the cached side's changed words
    added: tuple[str, ...] = ()  # the asked side's


@functools.cache
def _known() -> frozenset[str]:
    """The embedding model's whole-word vocabulary (about 20,000 words) and WordNet's single
    words (about 80,000): a typo of a word is rarely in either ("chlorite" and "nitrite" are)."""
    return _vocabulary() | wordnet_words()


@functools.cache
def _vocabulary() -> frozenset[str]:
    """The embedding model's whole words (none when its tokenizer cannot be read)."""
    try:
        return known_words()
    except (ImportError, OSError, ValueError, RuntimeError):
        return frozenset()


def warm_edits() -> None:
    """Load the vocabulary and the WordNet senses (start-up, not the first request)."""
    _known()
    _common()
    load_synonyms()


def known(word: str) -> bool:
    vocabulary = _known()
    return any(form in vocabulary for form in _forms(word))


def spelled_right(word: str) -> bool:
    """The word itself, or its singular, is in the vocabulary: unlike ``known``, no stem of it
    counts ("runing" is no word though "run" is)."""
    vocabulary = _known()
    return any(form in vocabulary for form in _plurals(word))


def words(text: str) -> tuple[str, ...]:
    """The question's words, normalised: lower case, no greeting or "please" at either end,
    contractions and shorthand spelled out, "how do I" as "how to", American spelling."""
    return _normalised(text)[0]


@functools.lru_cache(maxsize=8192)
def _normalised(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the words, the courtesy words stripped from either end)."""
    names = {m.group(0).lower() for m in NAME.finditer(text)}
    t = text.lower().replace("\u2019", "'").strip()
    lead, tail = LEAD.match(t), TAIL.search(t)
    courtesy = WORD.findall((lead.group(0) if lead else "") + " " + (tail.group(0) if tail else ""))
    t = TAIL.sub(" ", LEAD.sub(" ", t))
    t = NUMBER_SIGN.sub(" number ", HYPHENATED.sub(lambda m: "".join(filter(None, m.groups())), t))
    t = PERCENT.sub(r"\1 percent", t)
    t = re.sub(r"\bhow (do|can) u\b", r"how \1 you", t)  # before "how do you" is "how to"
    t = HOW_TO.sub("how to", t)
    if not FIRST_PERSON.search(t):
        t = HOW_DO_YOU.sub("how to", t)
    t = re.sub(r"\bw/o\b", "without", re.sub(r"\bb/c\b", "because", t)).replace("w/", "with ")
    t = IRREGULAR_NOT.sub(lambda m: NOT_FORMS[m.group(1)], t)
    t = re.sub(r"n't\b", " not", t).replace("can not", "cannot")
    t = re.sub(
        r"\b(\w+)'s\b", lambda m: m.group(1) + (" is" if m.group(1) in EDIT_KEEPS_IS else ""), t
    )
    t = re.sub(r"'(re|m|ll|ve|d)\b", lambda m: CONTRACTIONS[m.group(1)], t)
    out: list[str] = []
    for w in map(_unstretched, WORD.findall(t)):
        for spelled in EDIT_SHORTHAND.get(w, w).split():
            x = EDIT_IRREGULAR.get(spelled, spelled)
            # a name keeps its spelling: "Did Labour win?" is no "labor", "Grey's" no "gray"
            out.append(x if w in names else _american(x))
    return tuple(out), tuple(courtesy)


def _unstretched(word: str) -> str:
    """A word stretched for emphasis ("sooo", "pleeease") as the known word it stretches: the
    run of letters kept once or twice, whichever is a word; when both are, the one both the
    model's vocabulary and WordNet hold ("summmer" is "summer", not "Sumer"; "sooo" is "so",
    not "soo"), and of two such the doubled letter ("desssert" is "dessert", "goood" "good":
    a letter stretched was most often a double one). Never a run that starts the word or a word
    of one letter ("XXXL", "BBB", "AAA" are sizes and grades)."""
    run = STRETCHED.search(word)
    if run is None or run.start() == 0 or len(set(word)) == 1 or spelled_right(word):
        return word
    once, twice = STRETCHED.sub(r"\1", word), STRETCHED.sub(r"\1\1", word)
    spelled = [w for w in (once, twice) if spelled_right(w)]  # "runnning": "runing" is no word
    common = [w for w in (twice, once) if w in spelled and w in _common()]
    return (common or spelled or [word])[0]


@functools.cache
def _common() -> frozenset[str]:
    """Words both the embedding model's vocabulary and WordNet hold: common words, not
    names ("Sumer") or word pieces ("soo")."""
    return _vocabulary() & wordnet_words()


@functools.lru_cache(maxsize=65536)
def _american(word: str) -> str:
    """ "colour" -> "color", "organise" -> "organize", when the result is a known word (three
    letters at least before "our": "mourning" is not "morning"); "litre" -> "liter",
    "travelled" -> "traveled", "anaemia" -> "anemia" when WordNet gives the
    two spellings a shared sense ("filling" is no "filing"; WordNet gives "timbre" and
    "timber", "eagre" and "eager" one, and they stay apart)."""
    if not word.isalpha():
        return word
    if word in EDIT_BRITISH:
        return EDIT_BRITISH[word]
    if len(word) >= 6:
        for british, american in EDIT_SPELLINGS:
            i = word.rfind(british)
            if i >= 3 if british == "our" else i > 0 and word.endswith(british):
                spelled = word[:i] + american + word[i + len(british) :]
                if spelled != word and known(spelled):
                    return spelled
    if len(word) < 5:
        return word
    for ending in EDIT_DOUBLED_L:
        stem = word[: -len(ending) + 1]  # "travelled" -> "travel"
        if (
            word.endswith(ending)
            and len(stem) >= 4
            and stem[-2] in "aeiou"
            and stem not in EDIT_NOT_BRITISH  # "untilled" is no "untiled"
            and spelled_right(stem)
            and not spelled_right(stem + "e")  # "stilled" is no "stiled"
        ):
            return stem + ending[2:]  # "traveled"; never "filled" -> "filed", "polling"
    if word in EDIT_NOT_BRITISH:
        return word
    plural = "s" if word.endswith("s") else ""
    for british, american in EDIT_ENDINGS_SENSED:  # "litre" -> "liter", "programmes"
        if word.endswith(british + plural):
            spelled = word[: len(word) - len(british + plural)] + american + plural
            if _same_sense(word, spelled):
                return spelled
    for british, american in EDIT_SPELLINGS_SENSED:
        i = word.find(british, 1)
        while i > 0:
            spelled = word[:i] + american + word[i + len(british) :]
            if _same_sense(word, spelled):
                return spelled
            i = word.find(british, i + 1)
    return word


def _same_sense(word: str, spelled: str) -> bool:
    """``spelled`` is a word (or its plural) and WordNet gives it a sense of ``word``'s."""
    return spelled_right(spelled) and share_sense(word, spelled)


def _typo(a: str, b: str) -> bool:
    """One letter added, dropped or changed, or two neighbours swapped (Damerau distance 1),
    after the first letter, in words of five letters or more, and only one of the two is a
    known word (the model's vocabulary or WordNet's 80,000 words): "recieve" / "receive", never
    "sprain" / "strain", "nitrite" / "nitrate" or "ethanol" / "methanol"."""
    if min(len(a), len(b)) < 5 or not (a.isalpha() and b.isalpha()) or known(a) == known(b):
        return False  # a stem counts: "boating" is a word though only "boat" is listed
    if a[0] != b[0]:
        return False  # a typo rarely hits the first letter: "ethanol" / "methanol"
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:  # a neighbouring key: "exampke", never "sulfate" / "sulfite"
            return b[diff[0]] in KEYBOARD.get(a[diff[0]], "")
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and (a[diff[0]], a[diff[1]]) == (b[diff[1]], b[diff[0]])
        )
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


def same_word(a: str, b: str) -> bool:
    """Perhaps one word: singular and plural ("eggs" / "egg"), a long word's "-ation" and
    "-ing" ("meditation" / "meditating"), or a typo. Only a typo makes a repeat trivial: the
    verifier judges "glass" / "glasses". Other forms of one word are a change: tense
    ("expired" / "expires"), "-er" and "-ing" ("painter" / "painting", "fishing" / "fish")."""
    return a == b or bool(_plurals(a) & _plurals(b)) or _stem(a) == _stem(b) or _typo(a, b)


def _plurals(word: str) -> set[str]:
    forms = {word}
    if len(word) > 3 and word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif len(word) > 3 and word.endswith("es"):
        forms |= {word[:-2], word[:-1]}
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
    return forms


def _stem(word: str) -> str:
    """A crude derivational stem, for words of 7 letters or more: "meditation" and
    "meditating" -> "meditat"; shorter words keep their form ("organ" is not "organic")."""
    if len(word) < 7:
        return word
    for suffix in EDIT_STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 5:
            return word[: -len(suffix)]
    return word


def _pair_up(removed: list[str], added: list[str], match: Callable[[str, str], bool]) -> bool:
    """Every removed word pairs with an added one that ``match``es it, one for one."""
    if len(removed) != len(added):
        return False
    return any(
        all(match(a, b) for a, b in zip(removed, order, strict=True))
        for order in itertools.permutations(added)
    )


def _explained(removed: list[str], added: list[str]) -> bool:
    """The changed content words pair up as one word or as synonyms (cache.synonyms), never
    as the guards' opposites or units."""
    return _pair_up(removed, added, _alike)


@functools.lru_cache(maxsize=65536)
def _alike(a: str, b: str) -> bool:
    if same_word(a, b):
        return True
    if opposites(a, b) or _forms(a) & _forms(b):
        return False  # opposites, units, numbers; or one word in another tense or form
    return share_sense(a, b)


def edit(cached: str, asked: str) -> Edit:
    """How ``asked`` differs from ``cached`` (module docstring)."""
    (x, x_courtesy), (y, y_courtesy) = _normalised(cached), _normalised(asked)
    same = 0
    softened = False  # words matched as forms, stems or synonyms: the verifier decides
    removed: list[str] = []
    added: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, x, y, autojunk=False).get_opcodes():
        xa, ya = x[i1:i2], y[j1:j2]
        if op == "equal" or (
            op == "replace" and len(xa) == len(ya) and all(map(_typo_or_same, xa, ya))
        ):
            same += len(xa)
        elif op == "replace" and len(xa) == len(ya) and all(map(same_word, xa, ya)):
            same += len(xa)
            softened = True
        elif _compound(xa, ya):
            same += min(len(xa), len(ya))  # "litter box" / "litterbox", "set up" / "setup"
        else:
            removed += xa
            added += ya
    moved = Counter(removed) & Counter(added)  # "the tallest mountain" / "which mountain"
    removed = list((Counter(removed) - moved).elements())
    added = list((Counter(added) - moved).elements())
    same += sum(moved.values())
    if not removed and not added:
        if x_courtesy and y_courtesy and set(x_courtesy) != set(y_courtesy):
            return Edit("local", x_courtesy, y_courtesy)  # "say thank you?" / "say please?"
        # Words only moved ("Paris to Rome" / "Rome to Paris": the order guard) or matched
        # as forms ("expired" / "expires") are no repeat: the verifier decides.
        return Edit("function" if moved or softened else "trivial")
    changed = max(len(removed), len(added))
    if changed > LOCAL_WORDS or same < LOCAL_SAME or same < 0.5 * min(len(x), len(y)):
        return Edit("broad", tuple(removed), tuple(added))
    content_removed = [w for w in removed if w not in EDIT_FUNCTION]
    content_added = [w for w in added if w not in EDIT_FUNCTION]
    if not content_removed and not content_added:
        # Function words only: added, dropped or reworded ("What is X?" / "What does X
        # mean?") go to the verifier; swapped one for one ("should" / "can I take", "and" /
        # "or", "is" / "was", "my" / "your") they are a near miss unless the swap is one of
        # EDIT_SWAPS ("what" / "which", "in" / "on").
        allowed = _pair_up(removed, added, _swappable)
        swapped = len(removed) == len(added) and not allowed
        # "How do you store my data?" / "How do I ...?": a change of person
        near_miss = swapped or (_persons_changed(removed, added) and not allowed)
        return Edit("local" if near_miss else "function", tuple(removed), tuple(added))
    if _explained(content_removed, content_added):
        return Edit("synonym", tuple(removed), tuple(added))
    return Edit("local", tuple(removed), tuple(added))


def _persons_changed(removed: list[str], added: list[str]) -> bool:
    """Who is asked or about whom changed: "I" for "you", "my" for "your", or "you" added or
    dropped ("How do you store my data?" / "How do I ...?"); not a "my" added alone."""
    gone, new = PERSONS.intersection(removed), PERSONS.intersection(added)
    return bool(gone and new and gone != new) or bool(SECOND_PERSON & (gone ^ new))


def _typo_or_same(a: str, b: str) -> bool:
    return a == b or _typo(a, b)


def _compound(xa: tuple[str, ...], ya: tuple[str, ...]) -> bool:
    """The same compound split or joined ("litter box" / "litterbox"), its pieces words of
    three letters or more that are not function words ("a typical" is not "atypical")."""
    pieces = xa if len(xa) > len(ya) else ya
    return (
        bool(xa and ya)
        and all(w.isalpha() for w in xa + ya)
        and "".join(xa) == "".join(ya)
        and all((len(w) >= 3 and w not in EDIT_FUNCTION) or w in PARTICLES for w in pieces)
    )


def _swappable(a: str, b: str) -> bool:
    """Two function words a repeat may swap (cache.lexicon.EDIT_SWAPS: "what" / "which")."""
    return frozenset((a, b)) in EDIT_SWAPS
