"""Confident corrections of misspelt words in the text the semantic cache embeds.

When to use: ``cache.semantic.make_key`` corrects the question and its context (with
``spelling: true``, the default) into ``Key.probe`` / ``Key.context_probe``, the texts that
are embedded and searched: a misspelt word breaks into word pieces that pull the embedding
away, so a near-repeat ("how many calories are in a bannana") fell under the cosine floor.
The edit check, the guards and the verifiers still read the text as typed: a correction never
makes two questions the same, it only lets those rules see the candidate (a first version
that corrected the text they read served a red team's "reqwest" for "request": docs/caching.md).

Policy: a noisy channel with a wide margin. A word is corrected only when all of these hold,
so a correction is rare; a word left alone costs at most a miss:
- it is written in letters only (3 or more) and in lower case, or capitalised as the first
  word of a sentence ("Venmo", "Sedna" inside a sentence are names; "iPhone", "NASA" keep
  their spelling); it is not joined to a digit, an apostrophe, a hyphen, a dot, a slash, "@",
  "#", "_" or "+" (no code, file name, address or version);
- the embedding model's vocabulary and WordNet hold neither it nor its singular
  (``cache.edits.spelled_right``: a stem does not count, "commiting" is no word), no
  word of ``cache.lexicon`` (places, brands, shorthand, chatter, the guards' words) and no
  contraction written without its apostrophe ("dont" is never "done");
- the most frequent common word one edit away (a letter added, dropped or changed, or two
  neighbours swapped; Zipf frequency ``MIN_TARGET``, 2.5, or more in wordfreq's list of
  321,180 words, ``tiergate train spelling``; a letter doubled or undoubled counting ten
  times, ``DOUBLING``: the commonest slip) is ``LEAD`` (1.0: ten times) ahead of the next
  ("fidle" is "file" or "fiddle", "wich" "which" or "with": left) and keeps the word's first
  two letters (slips cluster away from a word's start: "pprint" is no "print"); and the word
  as typed is not in the list (not once in 100 million words: "procastinating", "pasport")
  or the correction is ``MARGIN`` (3.0: a thousand times) more frequent ("captial" ->
  "capital"). "silane" (a chemical, not "silage"), "carpe" (not "care"), "Quora" (not
  "quota") and "tik" ("tic", "tip", "tin") stay; words of more than ``MAX_LETTERS`` letters
  stay, and only the first ``MAX_TRIES`` words of a text are looked up.
Both the cached and the asked text pass through the same function, so a word corrected on one
side is corrected alike on the other. Without the artifact nothing is corrected (logged once).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import re
import string
from pathlib import Path
from types import ModuleType

from cache import lexicon
from cache.edits import spelled_right

log = logging.getLogger("tiergate.cache")
ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "spelling.json.gz"
MIN_LETTERS = 3
MIN_TARGET = 2.5  # a correction is a common word: once in about 3 million words or more
MARGIN = 3.0  # ... a thousand times as frequent as the word as typed, if the list has it
LEAD = 1.0  # ... and ten times as frequent as the next word one edit away
DOUBLING = 1.0  # a letter doubled or not ("bannana", "fidle"): ten times likelier a slip
SENTENCE_END = frozenset(".!?")
# A word in letters only, not part of a token with digits, apostrophes, hyphens, dots, ...
# (a quote around it is no part of it: "'carpe diem'" is "carpe diem")
CANDIDATE = re.compile(
    r"(?<![\w.\-/@#+=(`\[{<\\$%&*|~^])(?<!\w['\u2019])[A-Za-z]{3,}"
    r"(?![\w\-/@#+=(`\[{>\\$%&*|~^]|['\u2019]\w|\.\w)"
)
MAX_LETTERS = 20  # a longer word is no slip of a common one (and its neighbours cost more)
MAX_TRIES = 32  # words of a text looked up at most: a bound on the per-request cost
CONTRACTIONS = (
    "i'm i've i'll i'd you're you've you'll you'd he's she's it's we're we've we'll we'd "
    "they're they've they'll they'd that's there's here's what's who's where's when's why's "
    "how's let's isn't aren't wasn't weren't don't doesn't didn't can't couldn't won't "
    "wouldn't shouldn't mustn't mightn't needn't hasn't haven't hadn't ain't shan't "
    "would've could've should've might've must've y'all"
)


@functools.cache
def _zipf() -> dict[str, float]:
    """Word -> Zipf frequency (cache/artifacts/spelling.json.gz); empty without it."""
    try:
        with gzip.open(ARTIFACT, "rb") as f:
            bins: dict[str, str] = json.loads(f.read())["zipf"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("word frequencies unavailable (%s); no word is corrected", exc)
        return {}
    return {word: float(z) for z, words in bins.items() for word in words.split()}


def _lexicon_words(module: ModuleType) -> frozenset[str]:
    """Every word ``cache.lexicon`` names anywhere: its sets, maps, lists, texts, patterns."""
    found: set[str] = set()

    def take(value: object) -> None:
        if isinstance(value, str):
            found.update(w.lower() for w in re.findall(r"[A-Za-z]+", value))
        elif isinstance(value, re.Pattern):
            take(value.pattern)
        elif isinstance(value, dict):
            for k, v in value.items():
                take(k)
                take(v)
        elif isinstance(value, (set, frozenset, list, tuple)):
            for v in value:
                take(v)

    for name, value in vars(module).items():
        if name.isupper():
            take(value)
    return frozenset(found)


@functools.cache
def _kept() -> frozenset[str]:
    """Words never corrected beside the known ones: the lexicon's and bare contractions."""
    bare = {c.replace("'", "") for c in CONTRACTIONS.split()}
    return _lexicon_words(lexicon) | bare


def load() -> int:
    """Read the counts and the kept words now (start-up, not the first request)."""
    _kept()
    return len(_zipf())


@functools.lru_cache(maxsize=16384)
def correction(word: str) -> str | None:
    """The common word a lower-case ``word`` is a confident misspelling of, or None."""
    zipf = _zipf()
    if not zipf or not MIN_LETTERS <= len(word) <= MAX_LETTERS:
        return None
    if word in _kept() or spelled_right(word):
        return None
    found = sorted(
        (zipf[c] + (DOUBLING if _doubling(word, c) else 0.0), c)
        for c in _one_edit(word)
        if zipf.get(c, 0.0) >= MIN_TARGET
    )
    typed = zipf.get(word)  # None: not once in 100 million words of the list's sources
    if not found or (typed is not None and found[-1][0] - typed < MARGIN):
        return None
    if len(found) > 1 and found[-1][0] - found[-2][0] < LEAD:
        return None  # "wich": "which" and "with" (the runner-up may change the first letters)
    if found[-1][1][:2] != word[:2]:
        return None  # a slip in the first two letters is rare: "pprint" is no "print"
    return found[-1][1]


def _doubling(typed: str, meant: str) -> bool:
    """``meant`` is ``typed`` with a letter doubled or undoubled ("fidle" / "fiddle")."""
    long, short = (typed, meant) if len(typed) > len(meant) else (meant, typed)
    if len(long) != len(short) + 1:
        return False
    i = next((k for k in range(len(short)) if long[k] != short[k]), len(short))
    return long[:i] + long[i + 1 :] == short and (
        (i > 0 and long[i] == long[i - 1]) or (i + 1 < len(long) and long[i] == long[i + 1])
    )


def _one_edit(word: str) -> set[str]:
    """Every string one edit away (Damerau: add, drop, change a letter, swap neighbours)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    letters = string.ascii_lowercase
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in letters}
    out |= {a + c + b for a, b in splits for c in letters}
    out.discard(word)
    return out


def corrected(text: str) -> str:
    """``text`` with each confident misspelling corrected (module docstring); else as is.
    At most MAX_TRIES words are looked up, the first ones."""
    if not _zipf():
        return text
    tries = [MAX_TRIES]
    return CANDIDATE.sub(lambda m: _replace(m, tries), text)


def _replace(match: re.Match[str], tries: list[int]) -> str:
    word = match.group(0)
    lower = word.lower()
    if word != lower:
        text, k = match.string, match.start() - 1
        while k >= 0 and text[k].isspace():
            k -= 1
        if word != lower.capitalize() or (k >= 0 and text[k] not in SENTENCE_END):
            return word  # "Venmo", "Sedna" inside a sentence, "iPhone", "NASA": names
    if tries[0] <= 0:
        return word
    tries[0] -= 1
    fixed = correction(lower)
    if fixed is None:
        return word
    return fixed.capitalize() if word[0].isupper() else fixed
