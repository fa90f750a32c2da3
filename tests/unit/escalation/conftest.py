"""Builders for the escalation gate tests: hand-made answers and a tiny learned-gate artifact."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.escalation.features import FEATURE_NAMES
from gateway.escalation.gates import Answer
from gateway.escalation.verifier import ARTIFACT_FORMAT


def answer(
    text: str,
    prompt: str = "Tom has 3 apples and buys 4 more. How many apples?",
    *,
    finish_reason: str | None = "stop",
    response_format: Mapping[str, Any] | None = None,
    token_logprobs: tuple[float, ...] | None = None,
    first_token_top: tuple[tuple[str, float], ...] | None = None,
    samples: tuple[str, ...] = (),
) -> Answer:
    return Answer(
        prompt, text, finish_reason, response_format, token_logprobs, first_token_top, samples
    )


def tiny_artifact() -> dict[str, Any]:
    """A model that scores 'no final answer' as wrong (p ~0.92) and anything else as right."""
    n = len(FEATURE_NAMES)
    coef = [0.0] * n
    coef[FEATURE_NAMES.index("no_final_answer")] = 5.0
    return {
        "format": ARTIFACT_FORMAT,
        "feature_names": list(FEATURE_NAMES),
        "mean": [0.0] * n,
        "scale": [1.0] * n,
        "coef": coef,
        "intercept": -2.5,
        "quantiles": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    }


@pytest.fixture
def artifact_dir(tmp_path: Path) -> Path:
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "gate.json").write_text(json.dumps(tiny_artifact()))
    return tmp_path


def rules_yaml(gates: str | None) -> str:
    """Valid routing rules with a two-tier ``auto`` alias; ``gates`` is its YAML gate list."""
    escalation = f"    escalation:\n      gates: {gates}\n" if gates is not None else ""
    return (
        "targets:\n"
        "  cheap: {provider: openai, model: m1, api_base: 'http://127.0.0.1:1/v1',"
        " api_key_env: TIERGATE_TEST_UNSET_KEY}\n"
        "  strong: {provider: openai, model: m2, api_base: 'http://127.0.0.1:2/v1'}\n"
        "aliases:\n"
        "  auto:\n"
        "    tiers:\n"
        "      - {name: cheap, targets: [cheap]}\n"
        "      - {name: strong, targets: [strong]}\n" + escalation
    )
