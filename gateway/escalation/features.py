"""Features of a (prompt, answer) pair that say whether a cheap model's answer is likely wrong.

Use them for the learned confidence gate (``verifier.py``) and its training (``train.py``): the
same function runs at training and at serving, so the two never drift. Every feature is computed
from the texts alone (no logprobs, no other model), in well under a millisecond, and each one is
a reason a human grader would give: the working has an arithmetic slip, the answer stops
mid-computation or never states a result, numbers from the question are never used, the model
hedges or repeats itself, the problem is long and has many numbers (hard for a small model).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gateway.escalation.answer_forms import ends_with_answer, final_answer
from gateway.escalation.arithmetic import find_checks

FEATURE_NAMES: tuple[str, ...] = (
    "no_final_answer",
    "truncated",
    "arith_checks",
    "arith_failures",
    "arith_failed_any",
    "steps",
    "answer_prompt_ratio",
    "prompt_words",
    "prompt_numbers",
    "prompt_numbers_unused",
    "hedges",
    "repeated_lines",
    "final_not_integer",
    "final_negative",
    "final_not_computed",
    "final_magnitude",
    "algebra",
    "prompt_rates",
    "several_finals",
)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_HEDGES = re.compile(
    r"\b(?:approximately|assum\w*|however|wait|actually|mistake|re-?evaluat\w*|"
    r"not sure|i think|probably|it seems|correction|let me|let's re|reconsider|round(?:ed)? "
    r"(?:up|down)|cannot|can't|unclear|impossible)\b",
    re.IGNORECASE,
)
_ALGEBRA = re.compile(r"\b(?:let\s+[a-z]\b|equation|solve for|[a-z]\s*=\s*\d)", re.IGNORECASE)
_RATES = re.compile(
    r"%|\bpercent|\bhalf\b|\bthird|\bquarter|\bratio\b|\btwice\b|\bper\b|\beach\b|\bevery\b",
    re.IGNORECASE,
)
_COMPUTED = re.compile(r"(?:=|>>)\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)")
_DANGLING = tuple("+-*/=<(,x:$\u00d7")


@dataclass(frozen=True, slots=True)
class Features:
    """The feature vector of one (prompt, answer) pair, in ``FEATURE_NAMES`` order."""

    values: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)]


def _as_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def is_truncated(text: str) -> bool:
    """The answer stops mid-computation: an open ``<<``, a dangling operator, no full stop."""
    stripped = text.rstrip()
    if not stripped:
        return True
    if stripped.rfind("<<") > stripped.rfind(">>"):
        return True
    if stripped.endswith(_DANGLING):
        return True
    last_line = stripped.splitlines()[-1]
    return not ends_with_answer(stripped) and last_line[-1].isalnum() and len(last_line) > 40


def _repeated_share(text: str) -> float:
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) > 10]
    if not lines:
        return 0.0
    return 1.0 - len(set(lines)) / len(lines)


def _unused_share(prompt: str, answer: str) -> float:
    asked = set(_numbers(prompt))
    if not asked:
        return 0.0
    used = set(_numbers(answer))
    return len(asked - used) / len(asked)


MAX_TEXT_CHARS = 16_000  # the end of a longer text is read (lengths still count it all)


def extract(prompt: str, answer: str) -> Features:
    """Compute the features of one answer to one prompt (pure, deterministic)."""
    prompt_words = max(1, len(prompt.split()))
    answer_words = max(1, len(answer.split()))
    prompt, answer = prompt[-MAX_TEXT_CHARS:], answer[-MAX_TEXT_CHARS:]
    checks = find_checks(answer)
    failures = sum(not c.ok for c in checks)
    final_text = final_answer(answer, "auto") if ends_with_answer(answer) else None
    final = _as_float(final_text)
    computed = {f"{float(c.replace(',', '')):g}" for c in _COMPUTED.findall(answer)}
    steps = sum(1 for line in answer.splitlines() if "=" in line)
    finals = len(re.findall(r"####|\\boxed|final answer", answer, re.IGNORECASE))
    values = (
        float(final_text is None),
        float(is_truncated(answer)),
        math.log1p(len(checks)),
        math.log1p(failures),
        float(failures > 0),
        math.log1p(steps),
        math.log(answer_words / prompt_words),
        math.log(prompt_words),
        math.log1p(len(set(_numbers(prompt)))),
        _unused_share(prompt, answer),
        math.log1p(len(_HEDGES.findall(answer))),
        _repeated_share(answer),
        float(final is not None and not float(final).is_integer()),
        float(final is not None and final < 0),
        float(final is not None and f"{final:g}" not in computed),
        math.log10(1.0 + abs(final)) if final is not None else 0.0,
        float(bool(_ALGEBRA.search(answer))),
        math.log1p(len(_RATES.findall(prompt))),
        float(finals > 1),
    )
    return Features(values)
