"""Labeled escalation data: ``{"prompt", "weak", "strong", "weak_response", ...}`` lines, and the
fixed held-out split that training never sees.

Use ``read_rows`` for ``tiergate train escalation`` and ``tiergate eval escalation``, and
``in_test_split`` to keep the held-out part out of training and model selection. The split is a
stable hash of the prompt text (about ``TEST_PERCENT`` per cent of prompts), so it is the same
on every machine, for every file, and needs no stored list to be reproduced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

TEST_PERCENT = 30
SPLIT_RULE = f"int(sha256(prompt.strip())[:8], 16) % 100 < {TEST_PERCENT}: test"


@dataclass(frozen=True, slots=True)
class Row:
    """One prompt with the weak model's answer and both models' correctness (0 or 1)."""

    prompt: str
    weak_response: str
    weak: int
    strong: int


def prompt_hash(prompt: str) -> str:
    """The prompt's SHA-256 (hex), the split's key."""
    return hashlib.sha256(prompt.strip().encode()).hexdigest()


def in_test_split(prompt: str) -> bool:
    """Held out: never trained on, never used to choose a model or a threshold."""
    return int(prompt_hash(prompt)[:8], 16) % 100 < TEST_PERCENT


def _text(value: object) -> str:
    if isinstance(value, list):  # chat messages: the last user message is the prompt
        users = [m.get("content", "") for m in value if isinstance(m, dict)]
        return str(users[-1]) if users else ""
    return "" if value is None else str(value)


def read_rows(path: Path) -> list[Row]:
    """Parse a JSONL file; ValueError naming the line for a row without the fields."""
    rows: list[Row] = []
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                rows.append(
                    Row(
                        prompt=_text(raw["prompt"]),
                        weak_response=_text(raw["weak_response"]),
                        weak=int(raw["weak"]),
                        strong=int(raw["strong"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path.name}:{number}: bad row ({exc})") from None
    return rows


def select(rows: list[Row], split: str) -> list[Row]:
    """``all``, ``train`` (outside the held-out split) or ``test`` (the held-out split)."""
    if split == "all":
        return rows
    if split not in ("train", "test"):
        raise ValueError("split: all, train or test")
    want_test = split == "test"
    return [r for r in rows if in_test_split(r.prompt) == want_test]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
