"""The learned social-turn model: whether one message is only social talk.

When to use: ``cache.chatter`` asks it about a turn its rules refused only for want of a word
("ok thank you very much friend", "Hi! Long day at work, finally home."), never about a turn a
rule refuses for what it holds (a digit, a name, a time of day, a question, an answer to the
assistant's question or offer: cache.chatter's docstring). The structure stays the rules'; the
model only widens the vocabulary.

Model: two logistic regressions, their probabilities averaged: one over sparse features (the
message's word unigrams and bigrams, character 2-4-grams inside words, its role and its place
in the conversation), one over the message's embedding (the cache's own model, all-MiniLM-L6-v2,
with its role and place). Trained by ``tiergate train chatter`` (gateway.eval.social_train) on
``data/chatter/*.jsonl``; the artifact is ``cache/artifacts/social.json.gz``: the weights, the
cut per role, calibrated on the data's dev split for a false-social rate (a turn that changes
an answer taken for social talk), and the training card.

Cost: a pass over a short text (at most cache.chatter.CHATTER_MAX_CHARS) and a dict lookup per
feature, tens of microseconds, plus the embedding, which the library asks for in the same
batch as the question's (``Judge``: cache.semantic.SemanticLibrary.key) and keeps in the
embedder's LRU; the artifact is read once per process.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

ARTIFACT = Path(__file__).parent / "artifacts" / "social.json.gz"
Role = Literal["user", "assistant"]
Place = Literal["opening", "after_answer"]
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|\d+|[^\w\s]")
DIGITS = re.compile(r"\d")
NGRAMS = (2, 3, 4)


def features(text: str, role: Role, place: Place) -> list[str]:
    """The message's features: ``w:`` words, ``b:`` word pairs, ``c:`` character n-grams of each
    word (padded with ``<`` and ``>``), ``role:`` and ``place:``. Lower-cased, curly
    apostrophes straightened, digits as ``0``; letters repeated three times or more as two
    ("heyyy" -> "heyy")."""
    lowered = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    lowered = re.sub(r"(.)\1{2,}", r"\1\1", DIGITS.sub("0", lowered))
    words = WORD.findall(lowered)
    out = [f"role:{role}", f"place:{place}", f"len:{min(len(words), 24) // 4}"]
    out += [f"w:{w}" for w in words]
    out += [f"b:{a} {b}" for a, b in zip(["<s>", *words], [*words, "</s>"], strict=True)]
    for w in words:
        if w[0].isalpha():
            padded = f"<{w}>"
            out += [f"c:{padded[i : i + n]}" for n in NGRAMS for i in range(len(padded) - n + 1)]
    return out


class SocialJudge(Protocol):
    """What cache.chatter asks: is this message, said there, only social talk."""

    def social(self, text: str, role: Role, place: Place) -> bool: ...


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def head_inputs(vector: Sequence[float] | npt.NDArray[np.float32], role: Role, place: Place) -> Any:
    """The embedding regression's inputs: the vector, then role and place as 0/1."""
    extra = np.array([role == "assistant", place == "after_answer"], dtype=np.float32)
    return np.concatenate([np.asarray(vector, dtype=np.float32), extra])


@dataclass(frozen=True)
class SocialModel:
    weights: dict[str, float]
    bias: float
    cuts: dict[str, float]  # role -> the probability a message needs to count as social
    card: dict[str, Any]
    head: tuple[float, ...] = ()  # the embedding regression (dim + 2 weights); () for none
    head_bias: float = 0.0
    _head: Any = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_head", np.asarray(self.head, dtype=np.float32))

    def sparse_probability(self, text: str, role: Role, place: Place) -> float:
        z = self.bias + sum(self.weights.get(f, 0.0) for f in features(text, role, place))
        return _sigmoid(z)

    def probability(
        self,
        text: str,
        role: Role,
        place: Place,
        vector: Sequence[float] | npt.NDArray[np.float32] | None = None,
    ) -> float:
        """The probability that ``text`` is only social talk: the two regressions' mean (the
        sparse one alone for a model with no head). A model with a head needs the vector."""
        sparse = self.sparse_probability(text, role, place)
        if not self.head:
            return sparse
        if vector is None:
            raise ValueError("this social model needs the message's embedding")
        z = float(np.dot(self._head, head_inputs(vector, role, place))) + self.head_bias
        return (sparse + _sigmoid(z)) / 2

    def social(self, text: str, role: Role, place: Place) -> bool:
        """Whether ``text`` reaches its role's calibrated cut (a model without a head only)."""
        return self.probability(text, role, place) >= self.cuts[role]

    def to_json(self) -> dict[str, Any]:
        return {
            "bias": self.bias,
            "cuts": self.cuts,
            "card": self.card,
            "weights": self.weights,
            "head": list(self.head),
            "head_bias": self.head_bias,
        }


@dataclass(slots=True)
class Judge:
    """A model with the embeddings it has been given: a message without one is not social
    for now and is listed in ``missing``, so the caller embeds those and asks again
    (cache.semantic.SemanticLibrary.key)."""

    model: SocialModel
    vectors: dict[str, Any] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    # Discovery: a message without its vector counts as social, so the walk goes on and lists
    # the later messages it would ask about too (one embedding batch for all); a key made in
    # this mode is never used.
    optimistic: bool = False

    def social(self, text: str, role: Role, place: Place) -> bool:
        if not self.model.head:
            return self.model.social(text, role, place)
        vector = self.vectors.get(text)
        if vector is None:
            self.missing.add(text)
            return self.optimistic
        return self.model.probability(text, role, place, vector) >= self.model.cuts[role]


def write_model(model: SocialModel, path: Path = ARTIFACT) -> None:
    """The artifact, byte for byte the same for the same model (sorted keys, no timestamp)."""
    raw = json.dumps(model.to_json(), sort_keys=True, indent=0, ensure_ascii=False).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, mtime=0))


def read_model(path: Path) -> SocialModel:
    data = json.loads(gzip.decompress(path.read_bytes()))
    return SocialModel(
        {str(k): float(v) for k, v in data["weights"].items()},
        float(data["bias"]),
        {str(k): float(v) for k, v in data["cuts"].items()},
        dict(data["card"]),
        tuple(float(v) for v in data.get("head", ())),
        float(data.get("head_bias", 0.0)),
    )


@lru_cache(maxsize=1)
def load_social_model() -> SocialModel | None:
    """The shipped model, read once; None when the artifact is missing (the rules alone)."""
    return read_model(ARTIFACT) if ARTIFACT.exists() else None
