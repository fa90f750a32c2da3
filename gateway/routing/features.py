"""Text features of a prompt for the learned router: hashed words and a few shape statistics.

When to use: ``LearnedRouter.score`` (serving) and ``gateway.routing.train`` (training) both
call ``sparse_terms`` and ``shape_stats`` on the same text, so the model sees the same features
in both places. Pure CPU, numpy only, no I/O, no state; a few tens of microseconds a prompt.

Policy:
- Words and word pairs are hashed (CRC-32, stable across processes and machines, unlike
  ``hash()``) into ``dim`` buckets; a bucket counts once however often its term occurs, and
  the row is L2-normalised, so long prompts do not dominate. Subjects have strong vocabularies
  (a "tort", an "enzyme", "Statement 1 | ..."), which is what the router needs to know first.
- Numbers become ``<num>`` (their value says nothing about difficulty, their presence does).
- Shape statistics are the signals a length router uses, plus a few that mark hard forms:
  calculation (digits, operators), negated questions ("NOT", "EXCEPT" before the options),
  two-statement items.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from typing import Final

import numpy as np
import numpy.typing as npt

DEFAULT_DIM: Final = 1 << 14
WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
OPERATORS = frozenset("=+-*/^<>%()[]{}|\\")
NEGATION = re.compile(r"\b(not|except|least|false|incorrect|never)\b")
OPTION = re.compile(r"^[A-D]\. ", re.MULTILINE)
STAT_NAMES: Final = (
    "log_chars",
    "log_words",
    "log_question_chars",
    "log_mean_option_chars",
    "digit_share",
    "operator_share",
    "upper_share",
    "numbers",
    "negation",
    "two_statements",
    "question_mark",
    "lines",
)


def terms(text: str) -> list[str]:
    """Lower-cased words with numbers as ``<num>``, then adjacent word pairs."""
    words = ["<num>" if t[0].isdigit() else t for t in WORD.findall(text.lower())]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def sparse_terms(text: str, dim: int = DEFAULT_DIM) -> tuple[npt.NDArray[np.int64], float]:
    """Distinct hashed buckets of ``text``'s terms and the value each one holds (1/sqrt(n))."""
    buckets = sorted({zlib.crc32(t.encode()) % dim for t in terms(text)})
    index = np.asarray(buckets, dtype=np.int64)
    return index, (1.0 / math.sqrt(len(buckets)) if buckets else 0.0)


def shape_stats(text: str) -> npt.NDArray[np.float64]:
    """The ``STAT_NAMES`` statistics of one prompt (raw; the model standardises them)."""
    chars = max(len(text), 1)
    lowered = text.lower()
    first_option = OPTION.search(text)
    question = text[: first_option.start()] if first_option else text
    options = OPTION.split(text[first_option.start() :]) if first_option else []
    option_chars = [len(o.strip()) for o in options if o.strip()]
    digits = sum(c.isdigit() for c in text)
    operators = sum(c in OPERATORS for c in text)
    upper = sum(c.isupper() for c in text)
    return np.array(
        [
            math.log1p(len(text)),
            math.log1p(len(lowered.split())),
            math.log1p(len(question)),
            math.log1p(sum(option_chars) / len(option_chars)) if option_chars else 0.0,
            digits / chars,
            operators / chars,
            upper / chars,
            math.log1p(len(re.findall(r"\d+", text))),
            float(bool(NEGATION.search(question.lower()))),
            float("statement 1" in lowered),
            float("?" in question),
            math.log1p(text.count("\n")),
        ],
        dtype=np.float64,
    )
