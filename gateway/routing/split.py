"""The router's train/test split: a stable hash of the prompt text, nothing else.

When to use: training keeps ``test`` prompts out (they are never fitted nor tuned on);
``tiergate eval router --split test`` reports on them; cross-validation folds inside ``train``
come from the same hash. The rule needs no id list and gives the same split for any copy or
subset of a data file, on any machine: bucket = blake2b-64(prompt, UTF-8, person=seed as 8
little-endian bytes) mod 100; buckets 0..19 are ``test`` (about 20%), the rest ``train``; the
CV fold of a train prompt is its bucket mod ``folds``. The seed (``--split-seed``, default 0)
is written into the artifact, so ``eval router --split test`` finds the same split.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

Split = Literal["train", "test"]
TEST_BUCKETS: Final = 20  # buckets 0..19 of 100


def bucket(prompt: str, seed: int = 0) -> int:
    """0..99, stable across processes, machines and Python versions."""
    person = seed.to_bytes(8, "little")
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8, person=person).digest()
    return int.from_bytes(digest, "little") % 100


def split_of(prompt: str, seed: int = 0) -> Split:
    return "test" if bucket(prompt, seed) < TEST_BUCKETS else "train"


def fold_of(prompt: str, folds: int, seed: int = 0) -> int:
    """Cross-validation fold (0..folds-1) of a train prompt."""
    return bucket(prompt, seed) % folds
