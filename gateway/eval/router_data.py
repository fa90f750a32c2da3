"""Convert the shared RouteLLM sets (``../shared/data/routellm-evals``) to the router-eval format.

``python -m gateway.eval.router_data mt-bench [OUT.jsonl]`` writes MT-bench (stdout without OUT).
MMLU and GSM8K are already in the format (``{"prompt", "weak", "strong", ...}``).

MT-bench, as RouteLLM scores it (``benchmarks.py``, class ``MTBench``): questions whose first or
second turn is in ``contaminated_prompts.jsonl`` are dropped (72 of 80 remain); the router sees
the FIRST turn only; the routed model answers both turns, and the outcome is its GPT-4 judge
score (1-10) averaged over the two turns. So each row is ``prompt`` = turn 1, ``weak`` = the
mean score of Mixtral-8x7B-Instruct-v0.1 over turns 1 and 2, ``strong`` = the same for
gpt-4-1106-preview, plus ``question_id`` and ``category`` (never read by the router). The mean
over rows of the routed model's outcome equals RouteLLM's mean over both turns' judgements.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routellm-evals"
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_MODEL = "gpt-4-1106-preview"


def _jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mt_bench(data: Path = DATA) -> Iterator[dict[str, Any]]:
    folder = data / "mt_bench"
    contaminated = {row["eval_prompt"] for row in _jsonl(folder / "contaminated_prompts.jsonl")}
    scores: dict[tuple[int, str], list[float]] = {}
    for row in _jsonl(folder / "judgements_scores.jsonl"):
        scores.setdefault((int(row["question_id"]), row["model"]), []).append(float(row["score"]))
    for q in _jsonl(folder / "question.jsonl"):
        turns = q["turns"]
        if turns[0] in contaminated or turns[1] in contaminated:
            continue
        qid = int(q["question_id"])
        weak, strong = scores[(qid, WEAK_MODEL)], scores[(qid, STRONG_MODEL)]
        yield {
            "prompt": turns[0],
            "weak": sum(weak) / len(weak),
            "strong": sum(strong) / len(strong),
            "question_id": qid,
            "category": q["category"],
        }


SETS = {"mt-bench": mt_bench}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SETS:
        print(
            f"usage: python -m gateway.eval.router_data {{{','.join(SETS)}}} [OUT]", file=sys.stderr
        )
        return 2
    lines = "".join(json.dumps(row) + "\n" for row in SETS[argv[0]]())
    if len(argv) > 1:
        Path(argv[1]).write_text(lines)
    else:
        sys.stdout.write(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
