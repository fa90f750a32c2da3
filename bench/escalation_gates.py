"""How long each escalation gate takes to judge one answer (pure Python, no I/O).

    python -m bench.escalation_gates [--data FILE.jsonl] [--reps 3]

Judges every weak answer of the data (default: the shared GSM8K half) with each gate of the
shipped default list, ``--reps`` times, and prints p50/p99 over answers of each answer's best
time, in microseconds.
The gates run once per cheap-tier answer on an alias with escalation, after the upstream call
(hundreds of milliseconds), so they only need to stay well under a millisecond. Noisy on a
shared machine. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from gateway.escalation.dataset import read_rows
from gateway.escalation.gates import Answer, build_gates
from gateway.eval.escalation_eval import DEFAULT_RULES, gates_for

DATA = Path("../shared/data/routellm-evals/gsm8k.jsonl")
JSON_ANSWER = Answer(
    "Extract the person.",
    '{"name": "Ann", "age": 30}',
    "stop",
    {
        "type": "json_schema",
        "json_schema": {
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
            }
        },
    },
    None,
    None,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    gates = build_gates(gates_for(DEFAULT_RULES, "auto"), DEFAULT_RULES.parent)
    answers = [
        Answer(r.prompt, r.weak_response, "stop", None, None, None) for r in read_rows(args.data)
    ]
    figures: dict[str, dict[str, float]] = {}
    for gate in gates:
        timings = []
        for answer in answers:  # per answer, the best of --reps (the machine is shared)
            best = float("inf")
            for _ in range(args.reps):
                start = time.perf_counter()
                gate.judge(answer)
                best = min(best, (time.perf_counter() - start) * 1e6)
            timings.append(best)
        timings.sort()
        figures[gate.name] = {
            "p50_us": round(statistics.median(timings), 1),
            "p99_us": round(timings[int(0.99 * (len(timings) - 1))], 1),
        }
        print(
            f"{gate.name:>16}: p50 {figures[gate.name]['p50_us']:8.1f} us, "
            f"p99 {figures[gate.name]['p99_us']:8.1f} us  ({len(answers)} GSM8K answers)"
        )
    schema = next(g for g in gates if g.name == "schema")
    timings = []
    for _ in range(2000):
        start = time.perf_counter()
        schema.judge(JSON_ANSWER)
        timings.append((time.perf_counter() - start) * 1e6)
    figures["schema_json"] = {"p50_us": round(statistics.median(timings), 1)}
    print(f"{'schema (JSON)':>16}: p50 {figures['schema_json']['p50_us']:8.1f} us")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
