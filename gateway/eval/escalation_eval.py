"""``tiergate eval escalation``: how much of the weak-to-strong gap an alias's gates recover.

Each line of the data is ``{"prompt", "weak", "strong", "weak_response", ...}``. The gates see
only the prompt and the weak model's answer (no logprobs, no samples: those gates pass, as they
do in production when a signal is missing). A row is escalated when any gate fails; accuracy is
the mean of (strong if escalated else weak) and gap recovered is
(accuracy - weak) / (strong - weak).

Printed: the data's weak/strong/oracle figures, each gate's failure count at the operating
point, the curve (the rule gates applied first, then the learned gate's score swept from "never"
to "always") and, as the last line, JSON ``{"prompts", "escalation_rate", "accuracy",
"gap_recovered"}`` at the alias's configured operating point. ``--split test`` evaluates only the
held-out split that training never saw.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from gateway.escalation.dataset import Row, read_rows, select
from gateway.escalation.gates import Answer, Gate, GateSpec, Verdict, build_gates
from gateway.escalation.outcomes import point, share_thresholds, sweep
from gateway.escalation.verifier import LearnedGate

DEFAULT_RULES = Path("routing_rules/default.yaml")
DEFAULT_ALIAS = "auto"
# What `auto` is evaluated with while the shipped rules give it no `escalation:` block.
DEFAULT_GATES: tuple[dict[str, Any], ...] = (
    {"kind": "schema"},
    {"kind": "answer_present", "form": "auto"},
    {"kind": "arithmetic"},
    {
        "kind": "learned",
        "artifact": "artifacts/escalation/gate.json",
        "escalate_share": 0.38,
        "when_prompt_matches": r"\d",
    },
)
_SPECS: TypeAdapter[list[GateSpec]] = TypeAdapter(list[GateSpec])


@dataclass(frozen=True, slots=True)
class Judged:
    """The gates' verdicts on one row and the learned gate's score (None without one)."""

    row: Row
    verdicts: tuple[Verdict, ...]
    learned_score: float | None


class _KeysNotNeeded(Mapping[str, str]):
    """An environment in which every provider key "is set": the evaluation calls no provider,
    so rules for real providers validate without their secrets."""

    def __getitem__(self, key: str) -> str:
        return ""

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def gates_for(rules_path: Path, alias: str) -> list[GateSpec]:
    """The alias's validated ``escalation.gates`` (the shipped default gates when the alias has
    no escalation block). ValueError names what is wrong, by dotted path."""
    from gateway.rules import RulesInvalid, load_rules

    try:
        rules = load_rules(rules_path, env=_KeysNotNeeded())
    except RulesInvalid as exc:
        raise ValueError(str(exc)) from None
    found = rules.aliases.get(alias)
    if found is None:
        raise ValueError(f"{rules_path}: no alias {alias!r}")
    if found.escalation is None:
        return _SPECS.validate_python(list(DEFAULT_GATES))
    return list(found.escalation.gates)


def judge_rows(rows: Sequence[Row], gates: Sequence[Gate]) -> list[Judged]:
    """Run every gate on every row's weak answer."""
    out = []
    for row in rows:
        answer = Answer(row.prompt, row.weak_response, None, None, None, None)
        verdicts = tuple(g.judge(answer) for g in gates)
        learned = [
            v.score
            for g, v in zip(gates, verdicts, strict=True)
            if isinstance(g, LearnedGate) and v.score is not None
        ]
        out.append(Judged(row, verdicts, max(learned) if learned else None))
    return out


def _rule_failed(judged: Judged, gates: Sequence[Gate]) -> bool:
    return any(
        not v.passed
        for g, v in zip(gates, judged.verdicts, strict=True)
        if not isinstance(g, LearnedGate)
    )


def _line(label: str, rate: float, acc: float, gap: float) -> str:
    return f"{label:>22}  {rate:9.1%}  {acc:8.1%}  {gap:13.3f}"


def report(judged: Sequence[Judged], gates: Sequence[Gate]) -> tuple[list[str], dict[str, Any]]:
    """The printed lines and the last line's figures at the configured operating point."""
    weak = [j.row.weak for j in judged]
    strong = [j.row.strong for j in judged]
    n = len(judged)
    oracle = [w == 0 and s == 1 for w, s in zip(weak, strong, strict=True)]
    best = point(weak, strong, oracle)
    lines = [
        f"prompts {n}: weak {sum(weak) / n:.1%}, strong {sum(strong) / n:.1%}, "
        f"oracle {best.accuracy:.1%} at {best.escalation_rate:.1%} escalated",
        "gates: " + ", ".join(g.name for g in gates),
    ]
    failures = Counter(v.gate for j in judged for v in j.verdicts if not v.passed)
    lines.append("failures: " + (", ".join(f"{k} {v}" for k, v in failures.items()) or "none"))
    forced = [_rule_failed(j, gates) for j in judged]
    rule_only = point(weak, strong, forced)
    lines.append(f"{'':>22}  {'escalated':>9}  {'accuracy':>8}  {'gap_recovered':>13}")
    lines.append(_line("rule gates only", *_fields(rule_only)))
    if any(isinstance(g, LearnedGate) for g in gates):
        # A prompt the learned gate does not apply to never escalates on its score.
        known = [-math.inf if j.learned_score is None else j.learned_score for j in judged]
        for threshold, pt in sweep(weak, strong, forced, known, share_thresholds(known)):
            label = "+ learned never" if threshold == math.inf else f"+ learned >= {threshold:.3f}"
            lines.append(_line(label, *_fields(pt)))
    escalated = [any(not v.passed for v in j.verdicts) for j in judged]
    at = point(weak, strong, escalated)
    lines.append(_line("configured", *_fields(at)))
    figures = {
        "prompts": n,
        "escalation_rate": round(at.escalation_rate, 4),
        "accuracy": round(at.accuracy, 4),
        "gap_recovered": round(at.gap_recovered, 4),
    }
    return lines, figures


def _fields(pt: Any) -> tuple[float, float, float]:
    return pt.escalation_rate, pt.accuracy, pt.gap_recovered


def run_escalation_eval(
    data: Path, rules: Path | None, alias: str | None, split: str = "all"
) -> tuple[list[str], dict[str, Any]]:
    """Evaluate ``alias``'s gates of ``rules`` on ``data`` (``split``: all, train or test)."""
    rules_path = rules or DEFAULT_RULES
    specs = gates_for(rules_path, alias or DEFAULT_ALIAS)
    gates = build_gates(specs, rules_path.parent)
    rows = select(read_rows(data), split)
    if not rows:
        raise ValueError(f"{data}: no rows in split {split!r}")
    lines, figures = report(judge_rows(rows, gates), gates)
    return lines, figures


def main(data: Path, rules: Path | None, alias: str | None, split: str) -> int:
    """The command's body: print the report; 2 for bad input."""
    try:
        lines, figures = run_escalation_eval(data, rules, alias, split)
    except (OSError, ValueError) as exc:
        print(f"eval escalation: {exc}")
        return 2
    for line in lines:
        print(line)
    print(json.dumps(figures))
    return 0
