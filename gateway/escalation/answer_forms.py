"""Where an answer states its result: ``#### 42``, ``\\boxed{42}``, ``Answer: B``, a last number.

Use it to read the final answer out of a free-text reply (the final-answer gate, self-consistency
votes, the learned gate's features). Forms are closed and named in the rules, so an operator
picks the one the prompt asked for; ``auto`` tries the explicit forms before a last number.
"""

from __future__ import annotations

import re
from typing import Literal

Form = Literal["hash_number", "boxed", "answer_is", "choice_letter", "last_number", "auto"]

_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?%?|-?\$?\s*\.\d+%?"
FORMS: dict[str, re.Pattern[str]] = {
    "hash_number": re.compile(rf"####\s*\**\s*({_NUMBER})"),
    "boxed": re.compile(r"\\boxed\{([^{}]+)\}"),
    "answer_is": re.compile(
        rf"(?:final answer|the answer|answer)\s*(?:is|:)\s*\**\s*"
        rf"({_NUMBER}|(?-i:\(?[A-J]\)?(?![A-Za-z])))",
        re.IGNORECASE,
    ),
    # "Answer: B", "the answer is (C)", or a line that starts with the letter: "B", "B. Paris".
    "choice_letter": re.compile(
        r"(?i:\banswer\s*(?:is|:)\s*)\**\(?([A-H])\)?\**(?![A-Za-z])"
        r"|^\s*\**\(?([A-H])\)?\**(?:[.):]|\s*$)",
        re.MULTILINE,
    ),
    "last_number": re.compile(rf"({_NUMBER})"),
}
AUTO_ORDER = ("hash_number", "boxed", "answer_is", "last_number")
# Text after the stated answer that is still "the end" of the answer (units, punctuation).
TAIL_CHARS = 120


def canonical(value: str) -> str:
    """One spelling per value: ``$1,200.00`` and ``1200`` agree; letters are upper-cased."""
    text = value.strip().strip("*").replace("$", "").replace(",", "").replace(" ", "")
    text = text.rstrip(".").removesuffix("%")
    try:
        number = float(text)
    except ValueError:
        return value.strip().strip("()").upper()
    return f"{number:g}" if abs(number) < 1e15 else text


def final_answer(text: str, form: Form = "auto") -> str | None:
    """The last answer stated in ``form`` (canonical), or None when there is none."""
    names = AUTO_ORDER if form == "auto" else (form,)
    for name in names:
        matches = list(FORMS[name].finditer(text))
        if matches:
            last = matches[-1]
            return canonical(last.group(last.lastindex or 1))
    return None


def ends_with_answer(text: str, form: Form = "auto") -> bool:
    """The answer is stated in ``form`` near the end (not only mid-way, before more working)."""
    names = ("hash_number", "boxed", "answer_is") if form in ("auto", "last_number") else (form,)
    stripped = text.rstrip()
    for name in names:
        matches = list(FORMS[name].finditer(stripped))
        if matches and len(stripped) - matches[-1].end() <= TAIL_CHARS:
            return True
    if form == "last_number":
        return final_answer(stripped[-TAIL_CHARS:], "last_number") is not None
    return False
