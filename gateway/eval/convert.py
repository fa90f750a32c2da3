"""Convert the shared evaluation sets (``../shared/data``) to the cache-eval pair format.

``python -m gateway.eval.convert NAME [OUT.jsonl]`` writes one set (stdout without OUT);
``tiergate eval cache --pairs NAME`` converts on the fly, so big sets never enter the repo.

Sets:
- ``gptcache-paraphrase``: GPTCache's 999 ChatGPT paraphrases (``mock_data.json``); all
  ``same``. Its precision figure uses the shared protocol (``--shared``).
- ``gptcache-qqp``: 80,854 labeled Quora pairs (duplicates are ``same``).
- ``meancache-qqp``: MeanCache's 12,129 labeled Quora validation pairs.
- ``meancache-contextual``: multi-turn pairs built from MeanCache's follow-up query sets:
  ``multiturn-trap`` (the same follow-up asked in another conversation; must not hit),
  ``followup-vs-standalone`` (a follow-up against the same words asked without context; must
  not hit), ``multiturn-paraphrase`` (the same conversation, follow-up reworded; should hit) and
  ``multiturn-paraphrase-both`` (both turns reworded; should hit, hard).
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
Row = dict[str, Any]


def _turns(*texts: str) -> list[dict[str, str]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]


def gptcache_paraphrase(data: Path) -> Iterator[Row]:
    for item in json.loads((data / "gptcache-qqp" / "mock_data.json").read_text()):
        yield {
            "a": item["origin"],
            "b": item["similar"],
            "same": True,
            "category": "gptcache-paraphrase",
        }


def gptcache_qqp(data: Path) -> Iterator[Row]:
    with gzip.open(data / "gptcache-qqp" / "qqp_pairs_labeled.json.gz", "rt") as f:
        items = json.load(f)
    for item in items:
        same = int(item["label"]) == 1
        category = "qqp-duplicate" if same else "qqp-different"
        yield {"a": item["text_a"], "b": item["text_b"], "same": same, "category": category}


def meancache_qqp(data: Path) -> Iterator[Row]:
    with (data / "meancache" / "qqp_val.csv").open(newline="") as f:
        for item in csv.DictReader(f):
            same = item["is_duplicate"].strip() == "1"
            category = "qqp-duplicate" if same else "qqp-different"
            yield {
                "a": item["question1"],
                "b": item["question2"],
                "same": same,
                "category": category,
            }


def meancache_contextual(data: Path) -> Iterator[Row]:
    folder = data / "meancache" / "contextual_queries"
    seen: set[tuple[str, str]] = set()
    chats: list[tuple[str, str, str]] = []
    for name in (
        "contextual_queries.json",
        "d1.json",
        "context2.json",
        "Synthetic_Dataset_Diverse.json",
    ):
        for item in json.loads((folder / name).read_text()):
            main, answer, follow = (
                item["Main Query"],
                item["Main Query Response"],
                item["Follow-Up Query"],
            )
            if (main, follow) not in seen:
                seen.add((main, follow))
                chats.append((main, answer, follow))
    for i, (main, answer, follow) in enumerate(chats):
        other_main, other_answer, _ = chats[(i + 1) % len(chats)]
        if other_main != main:
            yield {
                "a": _turns(main, answer, follow),
                "b": _turns(other_main, other_answer, follow),
                "same": False,
                "category": "multiturn-trap",
            }
        yield {
            "a": follow,
            "b": _turns(main, answer, follow),
            "same": False,
            "category": "followup-vs-standalone",
        }
    claude = json.loads((folder / "new_claude.json").read_text())
    for i, item in enumerate(claude):
        other = claude[(i + 1) % len(claude)]
        base = _turns(item["u0"], item["system_q0"], item["u1"])
        yield {
            "a": base,
            "b": _turns(item["u0"], item["system_q0"], item["u1_duplicate"]),
            "same": True,
            "category": "multiturn-paraphrase",
        }
        yield {
            "a": base,
            "b": _turns(item["u0_duplicate"], item["system_q0"], item["u1_duplicate"]),
            "same": True,
            "category": "multiturn-paraphrase-both",
        }
        yield {
            "a": base,
            "b": _turns(other["u0"], other["system_q0"], item["u1"]),
            "same": False,
            "category": "multiturn-trap",
        }
    firsts = json.loads((folder / "unique_u0.json").read_text())
    follows = json.loads((folder / "unique_u1.json").read_text())
    for i, follow in enumerate(follows):
        one, two = firsts[i % len(firsts)], firsts[(i + 7) % len(firsts)]
        yield {
            "a": _turns(one, "(answer)", follow),
            "b": _turns(two, "(answer)", follow),
            "same": False,
            "category": "multiturn-trap-generic",
        }


SETS: dict[str, Callable[[Path], Iterator[Row]]] = {
    "gptcache-paraphrase": gptcache_paraphrase,
    "gptcache-qqp": gptcache_qqp,
    "meancache-qqp": meancache_qqp,
    "meancache-contextual": meancache_contextual,
}


def convert(name: str, data: Path = DATA) -> Iterator[Row]:
    return SETS[name](data)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SETS:
        print(
            f"usage: python -m gateway.eval.convert {{{','.join(SETS)}}} [OUT.jsonl]",
            file=sys.stderr,
        )
        return 2
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in convert(argv[0]))
    if len(argv) > 1:
        with Path(argv[1]).open("w") as out:
            out.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
