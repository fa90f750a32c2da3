"""Development sets for the semantic cache, split train / dev / test by a stable hash.

When to use: ``tiergate eval cache --pairs quora|traps|multiturn --split test`` (the figures in
docs/caching.md) and ``tiergate train cache-verifier`` (train to fit, dev to calibrate) build
them on the fly; ``python -m gateway.eval.devsets NAME SPLIT [OUT.jsonl]`` writes one. Pure
Python, deterministic: the same shared data gives byte-identical files, so nothing big is
shipped.

Split rule (never tune on ``test``): every question is a node, every labeled Quora pair an
edge; a connected component (a question and everything paired with it, transitively) goes
whole to one split, by the SHA-256 of its alphabetically first normalised question (70% train,
15% dev, 15% test). So no question of a test pair is ever seen in training, not even reworded
through a chain of duplicates. Traps are generated from the true paraphrase pairs of the same
split; multi-turn cases are split by the hash of the conversation's first question.

Sets:
- ``quora``: the labeled pairs of ``../shared/data/gptcache-qqp`` and ``meancache`` (deduplicated);
  the ``test`` split is balanced (as many non-duplicates as duplicates, picked by hash).
- ``traps``: from each Quora duplicate pair (a, b): should-hit ``paraphrase`` (a, b) and
  ``near-repeat`` (a, a lightly reworded), and must-not-hit traps (a, x) where x is a or b with
  one change: ``negation`` (insert or remove), ``entity`` (a name swapped for another of its
  kind from a list), ``number`` (a number, year, date, unit or amount changed), ``scope`` (an
  audience or qualifier added or changed), ``antonym`` (a word replaced by its opposite).
  The generator's word lists are its own (not cache.lexicon's), so the guards are not
  measured on their own words.
- ``multiturn``: conversations from MeanCache's follow-up sets: ``same-context`` (the same
  conversation, follow-up reworded), ``same-context-chatter`` (the same, after an unrelated
  earlier exchange), ``context-paraphrase`` (both the first question and the follow-up
  reworded), must-not-hit ``other-context`` (the same follow-up after another first question),
  ``changed-context`` (the first question with one detail changed, as for traps),
  ``followup-vs-standalone`` (the follow-up asked without its conversation) and
  ``changed-followup`` (the same conversation, the follow-up with one detail changed).
  ``changed-followup`` was added after the multi-turn figures were first reported; the rows
  before it are unchanged. Follow-ups to a follow-up (fifth session; the rows above unchanged):
  a chain (first question, generic follow-up, generic follow-up; the generic ones from
  MeanCache's ``unique_u1.json``, such as "Can you expand on that?") against the same chain after
  another first question (``deep-other-context``) or the first question with one detail changed
  (``deep-changed-context``), must-not-hit; and ``deep-same-context``, should-hit: (first
  question, follow-up, generic follow-up) against the same conversation after chatter, its
  follow-up reworded where MeanCache rewords it. And ``chatter-both-sides``, should-hit: the
  same conversation after two different chatter exchanges, one on each side. The cache passes
  over only the exchanges it recognises as chatter ("Hi there!", "Good morning."); the other
  four of ``CHATTER`` (a thanks with a detail, a statement, an instruction, a question) count
  as conversation, so those rows are missed hits by design (docs/caching.md, Multi-turn).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.eval.convert import DATA

Row = dict[str, Any]
SPLITS = ("train", "dev", "test")
SETS = ("quora", "traps", "multiturn")
TRAP_KINDS = ("negation", "entity", "number", "scope", "antonym")


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def bucket(text: str) -> str:
    """train / dev / test for a (normalised) text, by its SHA-256: 70 / 15 / 15."""
    value = int.from_bytes(hashlib.sha256(norm(text).encode()).digest()[:8], "big") % 100
    return "train" if value < 70 else "dev" if value < 85 else "test"


def _rank(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


# --- Quora ------------------------------------------------------------------------------------


def _quora_rows(data: Path) -> list[tuple[str, str, bool]]:
    rows: dict[tuple[str, str], tuple[str, str, bool]] = {}
    with gzip.open(data / "gptcache-qqp" / "qqp_pairs_labeled.json.gz", "rt") as f:
        for item in json.load(f):
            a, b = str(item["text_a"]).strip(), str(item["text_b"]).strip()
            rows.setdefault((norm(a), norm(b)), (a, b, int(item["label"]) == 1))
    with (data / "meancache" / "qqp_val.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            a, b = row["question1"].strip(), row["question2"].strip()
            rows.setdefault((norm(a), norm(b)), (a, b, row["is_duplicate"].strip() == "1"))
    return [r for r in rows.values() if r[0] and r[1] and norm(r[0]) != norm(r[1])]


def _components(rows: list[tuple[str, str, bool]]) -> dict[str, str]:
    """Each normalised question -> the split of its connected component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in rows:
        ra, rb = find(norm(a)), find(norm(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {q: bucket(find(q)) for q in parent}


def quora_split(split: str, data: Path = DATA) -> list[tuple[str, str, bool]]:
    rows = _quora_rows(data)
    where = _components(rows)
    return sorted((r for r in rows if where[norm(r[0])] == split), key=lambda r: _rank(r[0], r[1]))


def quora(split: str, data: Path = DATA) -> Iterator[Row]:
    rows = quora_split(split, data)
    if split == "test":  # balanced: as many non-duplicates as duplicates
        dups = [r for r in rows if r[2]]
        rows = dups + [r for r in rows if not r[2]][: len(dups)]
    for a, b, same in rows:
        yield {
            "a": a,
            "b": b,
            "same": same,
            "category": "qqp-duplicate" if same else "qqp-different",
        }


# --- traps ------------------------------------------------------------------------------------

NEGATE = [  # "Can I get ..." -> "Can I not get ...", "Is it safe" -> "Is it not safe"
    (
        r"(?i)\b(can|could|should|would|will|do|does|did|is|are|was|were)\s+"
        r"(I|you|we|they|he|she|it|there|this|that)\s+(?!not\b)",
        r"\1 \2 not ",
    ),
    (r"\b(is|are|was|were|can|should|will)\s+(?!not\b)", r"\1 not "),
]
UNNEGATE = [(r"\b(\w+)n't\b", r"\1"), (r"\bnot\s+", ""), (r"\bnever\b", "ever")]
ENTITY_GROUPS = [
    "India China Japan Canada Brazil Germany France Australia Russia Mexico Italy Spain Pakistan",
    "Trump Obama Clinton Modi Putin Hillary Biden Lincoln Gandhi Musk Bezos Zuckerberg",
    "Google Facebook Amazon Apple Microsoft Quora Uber Netflix Twitter Tesla Samsung IBM",
    "Python Java JavaScript C++ Ruby PHP Swift Kotlin Go Rust Scala MATLAB",
    "Android iOS Windows Linux Ubuntu macOS",
    "Delhi Mumbai Bangalore London Paris Tokyo Chicago Boston Sydney Berlin Toronto Dubai",
    "Harvard Stanford MIT Oxford Cambridge Yale Princeton Berkeley",
    "iPhone Pixel Galaxy OnePlus Xiaomi Nokia",
    "English Hindi Spanish French German Chinese Japanese Arabic",
    "Christianity Islam Hinduism Buddhism Judaism Sikhism",
]
ENTITY_OF = {w: g.split() for g in ENTITY_GROUPS for w in g.split()}
UNITS = [
    "kg lb g mg",
    "km miles meters feet inches cm",
    "hours minutes days weeks months years seconds",
    "dollars rupees euros pounds yen",
    "GB MB TB",
]
UNIT_OF = {w: g.split() for g in UNITS for w in g.split()}
MONTH_LIST = "January February March April May June July August September October November December"
MONTH_NAMES = MONTH_LIST.split()
NUMBER_WORD_LIST = "one two three four five six seven eight nine ten twenty hundred thousand"
NUMBER_WORDS = NUMBER_WORD_LIST.split()
AUDIENCES = [
    "for beginners",
    "for kids",
    "for women",
    "for students",
    "for seniors",
    "for engineers",
    "for a small business",
    "for diabetics",
    "in winter",
    "in India",
    "on a budget",
    "for dogs",
]
SCOPE_SWAPS = [
    ("beginners", "experts"),
    ("kids", "adults"),
    ("children", "adults"),
    ("men", "women"),
    ("boys", "girls"),
    ("students", "teachers"),
    ("employees", "employers"),
    ("buyers", "sellers"),
    ("students", "professionals"),
    ("freshers", "experienced"),
    ("undergraduate", "graduate"),
    ("Indian", "American"),
]
OPPOSITES = [
    ("good", "bad"),
    ("best", "worst"),
    ("increase", "decrease"),
    ("easy", "hard"),
    ("happy", "sad"),
    ("rich", "poor"),
    ("cheap", "expensive"),
    ("love", "hate"),
    ("advantages", "disadvantages"),
    ("pros", "cons"),
    ("buy", "sell"),
    ("win", "lose"),
    ("gain", "lose"),
    ("start", "stop"),
    ("strong", "weak"),
    ("healthy", "unhealthy"),
    ("legal", "illegal"),
    ("before", "after"),
    ("more", "less"),
    ("most", "least"),
    ("fast", "slow"),
    ("true", "false"),
    ("positive", "negative"),
    ("success", "failure"),
    ("old", "young"),
    ("long", "short"),
    ("hot", "cold"),
    ("high", "low"),
    ("safe", "dangerous"),
    ("possible", "impossible"),
    ("always", "never"),
    ("like", "dislike"),
    ("smart", "stupid"),
    ("important", "unimportant"),
    ("useful", "useless"),
    ("difficult", "simple"),
    ("better", "worse"),
    ("biggest", "smallest"),
    ("first", "last"),
    ("online", "offline"),
]
OPPOSITE_OF = {a: b for a, b in OPPOSITES} | {b: a for a, b in OPPOSITES}
REWORDS = [
    (r"^How do I\b", "How can I"),
    (r"^How can I\b", "How do I"),
    (r"^What is\b", "What's"),
    (r"^What's\b", "What is"),
    (r"^What are some\b", "What are the"),
    (r"^What are the\b", "What are some"),
    (r"^Which is\b", "What is"),
    (r"^Is it\b", "Is it really"),
    (r"\?$", ""),
    (r"\bgood\b", "nice"),
]


def _sub_one(text: str, pattern: str, repl: str) -> str | None:
    out = re.sub(pattern, repl, text, count=1)
    return out if out != text else None


def negate(text: str, rng: random.Random) -> str | None:
    if re.search(r"n't\b|\bnot\b|\bnever\b", text):
        for pattern, repl in UNNEGATE:
            if (out := _sub_one(text, pattern, repl)) is not None:
                return out
        return None
    for pattern, repl in NEGATE:
        if (out := _sub_one(text, pattern, repl)) is not None:
            return out
    return None


def swap_entity(text: str, rng: random.Random) -> str | None:
    words = re.findall(r"[A-Za-z+]+", text)
    found = [w for w in words if w in ENTITY_OF]
    if not found:
        return None
    old = rng.choice(found)
    new = rng.choice([w for w in ENTITY_OF[old] if w != old])
    return re.sub(rf"(?<![A-Za-z]){re.escape(old)}(?![A-Za-z])", new, text, count=1)


def change_number(text: str, rng: random.Random) -> str | None:
    digits = list(re.finditer(r"\b\d+(?:\.\d+)?\b", text))
    if digits:
        m = rng.choice(digits)
        value = m.group(0)
        if len(value) == 4 and value.startswith(("19", "20")):
            new = str(int(value) + rng.choice([-3, -2, -1, 1, 2, 5]))
        else:
            number = float(value)
            new = str(int(number * rng.choice([2, 3, 10]) + 1)) if number < 1e6 else "1000"
        return text[: m.start()] + new + text[m.end() :]
    for group in (UNIT_OF, {m: MONTH_NAMES for m in MONTH_NAMES}):
        hits = [w for w in re.findall(r"[A-Za-z]+", text) if w in group]
        if hits:
            old = rng.choice(hits)
            new = rng.choice([w for w in group[old] if w != old])
            return re.sub(rf"\b{old}\b", new, text, count=1)
    hits = [w for w in re.findall(r"[a-z]+", text) if w in NUMBER_WORDS]
    if hits:
        old = rng.choice(hits)
        new = rng.choice([w for w in NUMBER_WORDS if w != old])
        return re.sub(rf"\b{old}\b", new, text, count=1)
    return None


def change_scope(text: str, rng: random.Random) -> str | None:
    for old, new in rng.sample(SCOPE_SWAPS, len(SCOPE_SWAPS)):
        for a, b in ((old, new), (new, old)):
            if re.search(rf"\b{a}\b", text):
                return re.sub(rf"\b{a}\b", b, text, count=1)
    if not text.rstrip().endswith("?") or len(text) > 160:
        return None
    return text.rstrip()[:-1].rstrip() + " " + rng.choice(AUDIENCES) + "?"


def antonym(text: str, rng: random.Random) -> str | None:
    words = [w for w in re.findall(r"[a-z]+", text) if w in OPPOSITE_OF]
    if not words:
        return None
    old = rng.choice(words)
    return re.sub(rf"\b{old}\b", OPPOSITE_OF[old], text, count=1)


def reword(text: str, rng: random.Random) -> str | None:
    options = [(p, r) for p, r in REWORDS if re.search(p, text)]
    if not options:
        return text.rstrip("?") + " please?" if text.endswith("?") else None
    pattern, repl = rng.choice(options)
    return _sub_one(text, pattern, repl)


MUTATIONS: dict[str, Callable[[str, random.Random], str | None]] = {
    "negation": negate,
    "entity": swap_entity,
    "number": change_number,
    "scope": change_scope,
    "antonym": antonym,
}


TRAP_SOURCES = 2000  # duplicate pairs per split the traps are made from (bounds the embedding)


def traps(split: str, data: Path = DATA, sources: int = TRAP_SOURCES) -> Iterator[Row]:
    """Per duplicate pair (the first ``TRAP_SOURCES`` by hash): the paraphrase, a near-repeat,
    and each trap that applies (of a or of b, by hash), so every kind is drawn from the same
    questions."""
    pairs = [r for r in quora_split(split, data) if r[2] and len(r[0]) <= 200 >= len(r[1])]
    for a, b, _ in pairs[:sources]:
        rng = random.Random(_rank(a, b))
        yield {"a": a, "b": b, "same": True, "category": "paraphrase"}
        near = reword(a, rng)
        if near is not None and norm(near) != norm(a):
            yield {"a": a, "b": near, "same": True, "category": "near-repeat"}
        for kind, mutate in MUTATIONS.items():
            source = b if rng.random() < 0.5 else a
            out = mutate(source, rng)
            if out is None and source is b:
                out = mutate(a, rng)
            if out is not None and norm(out) not in (norm(a), norm(b)):
                yield {"a": a, "b": out, "same": False, "category": kind}


# --- multi-turn -------------------------------------------------------------------------------


def _turns(*texts: str) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]


CHATTER = [
    ("Hi there!", "Hello! How can I help you today?"),
    ("Thanks for the help earlier.", "You're welcome!"),
    ("Can you keep your answers short?", "Sure, I'll keep them brief."),
    ("Good morning.", "Good morning! What would you like to know?"),
    ("I'm working on a project for school.", "Sounds great, happy to help."),
    ("What time is it in your world?", "I don't have a clock, but I can help with questions."),
]


def _conversations(data: Path) -> list[tuple[str, str, str, str | None, str | None]]:
    """(first question, its answer, follow-up, reworded follow-up, reworded first question)."""
    folder = data / "meancache" / "contextual_queries"
    out: dict[tuple[str, str], tuple[str, str, str, str | None, str | None]] = {}
    for name in (
        "contextual_queries.json",
        "d1.json",
        "context2.json",
        "Synthetic_Dataset_Diverse.json",
    ):
        for item in json.loads((folder / name).read_text()):
            main, follow = item["Main Query"], item["Follow-Up Query"]
            out.setdefault((main, follow), (main, item["Main Query Response"], follow, None, None))
    for item in json.loads((folder / "new_claude.json").read_text()):
        main, follow = item["u0"], item["u1"]
        out[(main, follow)] = (
            main,
            item["system_q0"],
            follow,
            item["u1_duplicate"],
            item["u0_duplicate"],
        )
    return sorted(out.values(), key=lambda c: _rank(c[0], c[2]))


REPLY = "Here is more on that."  # the assistant's turn inside a chain (the cache never reads it)


def _generic_followups(data: Path) -> list[str]:
    """MeanCache's follow-ups that name no subject ("Can you expand on that?")."""
    folder = data / "meancache" / "contextual_queries"
    return sorted(set(json.loads((folder / "unique_u1.json").read_text())))


def multiturn(split: str, data: Path = DATA) -> Iterator[Row]:
    chats = [c for c in _conversations(data) if bucket(c[0]) == split]
    generic = _generic_followups(data)
    for i, (main, answer, follow, follow2, main2) in enumerate(chats):
        rng = random.Random(_rank(main, follow))
        base = _turns(main, answer, follow)
        if follow2 is not None:
            yield {
                "a": base,
                "b": _turns(main, answer, follow2),
                "same": True,
                "category": "same-context",
            }
            hi, ho = rng.choice(CHATTER)
            yield {
                "a": base,
                "b": _turns(hi, ho, main, answer, follow2),
                "same": True,
                "category": "same-context-chatter",
            }
            if main2 is not None:
                yield {
                    "a": base,
                    "b": _turns(main2, answer, follow2),
                    "same": True,
                    "category": "context-paraphrase",
                }
        hi, ho = rng.choice(CHATTER)
        yield {
            "a": base,
            "b": _turns(hi, ho, main, answer, follow),
            "same": True,
            "category": "same-context-chatter",
        }
        other = next((c for c in chats[i + 1 :] + chats[:i] if norm(c[0]) != norm(main)), None)
        if other is not None:
            yield {
                "a": base,
                "b": _turns(other[0], other[1], follow),
                "same": False,
                "category": "other-context",
            }
        changed = _one_change(main, rng)
        if changed is not None:
            b = _turns(changed, answer, follow)
            yield {"a": base, "b": b, "same": False, "category": "changed-context"}
        yield {"a": follow, "b": base, "same": False, "category": "followup-vs-standalone"}
        changed = _one_change(follow, rng)
        if changed is not None:
            b = _turns(main, answer, changed)
            yield {"a": base, "b": b, "same": False, "category": "changed-followup"}
        yield from _deep(main, answer, follow2 or follow, follow, other, generic, rng)
        (ha, hoa), (hb, hob) = rng.sample(CHATTER, 2)
        yield {
            "a": _turns(ha, hoa, main, answer, follow),
            "b": _turns(hb, hob, main, answer, follow),
            "same": True,
            "category": "chatter-both-sides",
        }


def _deep(
    main: str,
    answer: str,
    reworded: str,
    follow: str,
    other: tuple[str, str, str, str | None, str | None] | None,
    generic: list[str],
    rng: random.Random,
) -> Iterator[Row]:
    """Follow-ups to a follow-up (added in the fifth session): a generic follow-up such as
    "Can you expand on that?" after another generic one means something else in every
    conversation, so only the first question tells two chains apart."""
    g1, g2 = rng.sample(generic, 2)
    chain = _turns(main, answer, g1, REPLY, g2)
    if other is not None:
        b = _turns(other[0], other[1], g1, REPLY, g2)
        yield {"a": chain, "b": b, "same": False, "category": "deep-other-context"}
    changed = _one_change(main, rng)
    if changed is not None:
        b = _turns(changed, answer, g1, REPLY, g2)
        yield {"a": chain, "b": b, "same": False, "category": "deep-changed-context"}
    hi, ho = rng.choice(CHATTER)
    a = _turns(main, answer, follow, REPLY, g2)
    b = _turns(hi, ho, main, answer, reworded, REPLY, g2)
    yield {"a": a, "b": b, "same": True, "category": "deep-same-context"}


def _one_change(text: str, rng: random.Random) -> str | None:
    """``text`` with one detail changed by the first mutation (in a random order) that applies."""
    for kind in rng.sample(list(MUTATIONS), len(MUTATIONS)):
        changed = MUTATIONS[kind](text, rng)
        if changed is not None and norm(changed) != norm(text):
            return changed
    return None


BUILDERS: dict[str, Callable[[str, Path], Iterator[Row]]] = {
    "quora": quora,
    "traps": traps,
    "multiturn": multiturn,
}


def build(name: str, split: str, data: Path = DATA) -> Iterator[Row]:
    if name not in BUILDERS or split not in SPLITS:
        raise ValueError(f"unknown set {name!r} or split {split!r}: sets {SETS}, splits {SPLITS}")
    return BUILDERS[name](split, data)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in BUILDERS or argv[1] not in SPLITS:
        print(
            f"usage: python -m gateway.eval.devsets {{{','.join(SETS)}}} "
            f"{{{','.join(SPLITS)}}} [OUT.jsonl]",
            file=sys.stderr,
        )
        return 2
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in build(argv[0], argv[1]))
    if len(argv) > 2:
        with Path(argv[2]).open("w") as out:
            out.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
