"""Whether two words can mean the same: they share a WordNet sense.

When to use: ``cache.edits`` asks ``share_sense`` about the words a local edit swapped ("How
do I contact support?" / "How can I reach support?"). A swap of words that share a sense goes
to the verifier like any rewording; one that does not is a near miss and is refused.

Policy: a shared sense (WordNet's synsets: "contact" / "reach", "apply" / "use"), an
adjective's "similar to" cluster or a verb group; no derivation or hypernym link, which join
far more words than usage does ("fridge" / "freezer"). Antonyms never share a sense. Beside
WordNet, a hand-written list of everyday pairs it lacks (`data/synonym_pairs.txt`, 374
pairs written by a helper who saw no evaluation set: "fee" / "charge", "cancel" / "end").
A rare shared sense ("teach" / "learn") only lets the verifier decide, and the guards'
opposites still see it. Built by ``tiergate train synonyms`` (gateway.eval.synonyms_build);
without the artifact no two different words share a sense (logged once), so every local edit
of a content word is refused.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
from pathlib import Path

from cache.guards import _forms

log = logging.getLogger("tiergate.cache")
ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "synonyms.json.gz"


Senses = dict[str, frozenset[int]]
Pairs = frozenset[frozenset[str]]


@functools.cache
def _artifact() -> tuple[Senses, frozenset[str], Pairs]:
    try:
        with gzip.open(ARTIFACT, "rb") as f:
            doc = json.loads(f.read())
        lemmas: dict[str, list[int]] = doc["lemmas"]
        words: list[str] = doc["words"]
        pairs: list[list[str]] = doc.get("pairs", [])
    except (OSError, ValueError, KeyError) as exc:
        log.warning("WordNet senses unavailable (%s); no swap counts as synonyms", exc)
        return {}, frozenset(), frozenset()
    senses = {w: frozenset(ss) for w, ss in lemmas.items()}
    return senses, frozenset(words), frozenset(frozenset(p) for p in pairs)


def wordnet_words() -> frozenset[str]:
    """Every single-word WordNet lemma (about 80,000): a word, not a typo."""
    return _artifact()[1]


def load() -> int:
    """Read the artifact now (start-up, not the first request); the number of lemmas."""
    return len(_artifact()[0])


def share_sense(a: str, b: str) -> bool:
    """``a`` and ``b`` (lower case, any inflection: "symptoms" / "signs") share a sense."""
    senses, _, pairs = _artifact()
    fa, fb = _forms(a), _forms(b)
    if pairs and any(frozenset((x, y)) in pairs for x in fa for y in fb):
        return True  # the hand-written list: "fee" / "charge", "cancel" / "end"
    mine = frozenset().union(*(senses.get(f, frozenset()) for f in fa))
    return bool(mine) and any(mine & senses.get(f, frozenset()) for f in fb)
