"""The sim's quality mode: answer known prompts as a weak or a strong model did.

A dataset is JSONL with one prompt per line: ``{"prompt", "weak": 0|1, "strong": 0|1}`` and,
when known, the models' answer texts ``weak_response`` / ``strong_response`` (RouteLLM's eval
format, see ``../shared/data/routellm-evals``). A model configured with ``quality: {dataset,
role}`` answers a request whose last user message is such a prompt with that role's answer, and
reports token logprobs that agree with whether the answer was right: confident when right, less
so when wrong, with overlap, so a confidence gate is useful but not perfect (as with real
models). Prompts not in the dataset get the model's ordinary answer. ``/_sim/stats`` counts the
answers given from the dataset and how many were right, so a test can measure a router's or a
cascade's accuracy end to end.

Policy for rows without answer texts (MMLU): the answer is ``"Answer: X"`` with a letter drawn
from the prompt's hash; its rightness is the row's label, which is what the stats count.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

Role = Literal["weak", "strong"]
LETTERS = "ABCD"
# Mean token logprob of a right and of a wrong answer, and the spread around each.
RIGHT_LOGPROB = (-0.08, 0.35)
WRONG_LOGPROB = (-0.75, 0.9)


@dataclass(frozen=True, slots=True)
class Graded:
    """One known answer: its text, whether it was right, its token logprob."""

    text: str
    correct: bool
    logprob: float


def _unit(text: str, salt: str) -> float:
    """A deterministic number in [0, 1) from the text."""
    return zlib.crc32(f"{salt}:{text}".encode()) / 2**32


def graded(prompt: str, row: dict[str, object], role: Role) -> Graded:
    correct = bool(row.get(role))
    text = row.get(f"{role}_response")
    if not isinstance(text, str) or not text.strip():
        text = f"Answer: {LETTERS[int(_unit(prompt, role + 'letter') * len(LETTERS))]}"
    centre, spread = RIGHT_LOGPROB if correct else WRONG_LOGPROB
    logprob = min(-0.001, centre - spread * _unit(prompt, role))
    return Graded(text.strip(), correct, round(logprob, 4))


class QualityBook:
    """The graded answers of one dataset for one role, by prompt text."""

    def __init__(self, answers: dict[str, Graded]) -> None:
        self._answers = answers

    def __len__(self) -> int:
        return len(self._answers)

    @classmethod
    def load(cls, path: Path, role: Role) -> QualityBook:
        answers: dict[str, Graded] = {}
        with path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
                prompt = row.get("prompt") if isinstance(row, dict) else None
                if not isinstance(prompt, str):
                    raise ValueError(f"{path}:{number}: no prompt")
                answers[prompt.strip()] = graded(prompt.strip(), row, role)
        return cls(answers)

    def lookup(self, last_user: str) -> Graded | None:
        return self._answers.get(last_user.strip())
