"""The learned confidence gate: a logistic regression over ``features.py``, loaded from JSON.

Use ``load_model(path)`` once per rules load and ``LearnedGate.judge`` per answer. The artifact
(``tiergate train escalation`` writes it) holds the feature names, the standardisation, the
weights and the quantiles of the training answers' scores; the gate's threshold is the score
above which ``escalate_share`` of those answers fall, so the operator sets a cost point, not a raw
threshold. Scoring is a dot product over ~20 floats in plain Python: no numpy or scikit-learn at
serving, and the same features code as training.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.escalation.features import FEATURE_NAMES, extract

if TYPE_CHECKING:
    from gateway.escalation.gates import Answer, Verdict

ARTIFACT_FORMAT = "tiergate-escalation-gate/1"


@dataclass(frozen=True, slots=True)
class LearnedModel:
    """Standardised logistic regression: P(answer wrong) = sigmoid(w . (x - mean) / scale + b)."""

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    quantiles: tuple[float, ...]  # training scores at shares 0, 1/Q, ..., 1 (ascending)

    def score(self, prompt: str, text: str) -> float:
        """How likely the answer is wrong, in [0, 1]."""
        values = extract(prompt, text).values
        z = self.intercept + math.fsum(
            w * (x - m) / s
            for w, x, m, s in zip(self.coef, values, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def threshold_for(self, escalate_share: float) -> float:
        """The score at or above which about ``escalate_share`` of training answers fall."""
        if escalate_share <= 0:
            return math.inf
        if escalate_share >= 1:
            return -math.inf
        position = (1.0 - escalate_share) * (len(self.quantiles) - 1)
        low = math.floor(position)
        high = min(low + 1, len(self.quantiles) - 1)
        frac = position - low
        return self.quantiles[low] * (1 - frac) + self.quantiles[high] * frac


def _floats(raw: Any, where: str) -> tuple[float, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, int | float) for v in raw):
        raise ValueError(f"{where}: expected a list of numbers")
    return tuple(float(v) for v in raw)


def model_from_dict(raw: dict[str, Any], source: str = "artifact") -> LearnedModel:
    """Validate an artifact's JSON; raise ValueError naming what is wrong."""
    if raw.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{source}: format is not {ARTIFACT_FORMAT}")
    names = tuple(raw.get("feature_names", ()))
    if names != FEATURE_NAMES:
        raise ValueError(f"{source}: features differ from this code's; retrain the gate")
    model = LearnedModel(
        feature_names=names,
        mean=_floats(raw.get("mean"), f"{source}: mean"),
        scale=_floats(raw.get("scale"), f"{source}: scale"),
        coef=_floats(raw.get("coef"), f"{source}: coef"),
        intercept=float(raw.get("intercept", 0.0)),
        quantiles=_floats(raw.get("quantiles"), f"{source}: quantiles"),
    )
    sizes = {len(model.mean), len(model.scale), len(model.coef), len(names)}
    if len(sizes) != 1 or len(model.quantiles) < 2 or any(s <= 0 for s in model.scale):
        raise ValueError(f"{source}: inconsistent sizes or scales")
    return model


ARTIFACT_FILE = "gate.json"


def load_model(path: Path) -> LearnedModel:
    """Load a learned gate artifact: ``gate.json`` or the directory holding it (what ``tiergate
    train escalation --out DIR`` wrote); ValueError when missing or malformed."""
    if path.is_dir():
        path = path / ARTIFACT_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name}: cannot load the learned gate: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: expected a JSON object")
    return model_from_dict(raw, path.name)


@dataclass(frozen=True, slots=True)
class LearnedGate:
    """Fails answers whose learned score of being wrong is at or above the threshold."""

    model: LearnedModel
    threshold: float
    when: re.Pattern[str] | None = None
    name: str = "learned"
    needs_logprobs: bool = False
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        from gateway.escalation.gates import Verdict

        if self.when is not None and not self.when.search(answer.prompt):
            return Verdict(self.name, True, None, "not-applicable")
        score = self.model.score(answer.prompt, answer.text)
        passed = score < self.threshold
        return Verdict(self.name, passed, score, f"p-wrong {score:.2f}")
