from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gateway.escalation.features import FEATURE_NAMES, extract
from gateway.escalation.verifier import load_model, model_from_dict
from gateway.escalation.verifier_prompt import VerifierModelGate, parse_yes_no, verifier_messages
from tests.unit.escalation.conftest import answer, tiny_artifact

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_artifact_matches_this_code() -> None:
    model = load_model(ROOT / "routing_rules/artifacts/escalation/gate.json")
    assert model.feature_names == FEATURE_NAMES
    good = model.score("Tom has 3 apples and buys 4. How many?", "3 + 4 = <<3+4=7>>7\n#### 7")
    bad = model.score("Tom has 3 apples and buys 4. How many?", "3 + 4 = <<3+4=8>>8, or maybe")
    assert 0 <= good < bad <= 1


def test_threshold_follows_the_training_quantiles() -> None:
    model = model_from_dict(tiny_artifact())
    assert model.threshold_for(0.25) == pytest.approx(0.75)
    assert model.threshold_for(0.0) == math.inf
    assert model.threshold_for(1.0) == -math.inf


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other/1"}, "format"),
        ({"feature_names": ["a"]}, "features differ"),
        ({"scale": [0.0] * len(FEATURE_NAMES)}, "inconsistent"),
        ({"coef": [1.0]}, "inconsistent"),
        ({"mean": "x"}, "list of numbers"),
    ],
)
def test_malformed_artifacts_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_from_dict(tiny_artifact() | change)


def test_load_model_reports_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        load_model(path)
    path.write_text(json.dumps(tiny_artifact()))
    assert load_model(path).intercept == -2.5


def test_features_are_one_vector_in_name_order() -> None:
    features = extract("Tom has 3 apples and buys 4. How many?", "3 + 4 = <<3+4=8>>8\n#### 8")
    named = features.as_dict()
    assert list(named) == list(FEATURE_NAMES)
    assert named["arith_failed_any"] == 1.0
    assert named["no_final_answer"] == 0.0
    assert named["truncated"] == 0.0
    cut = extract("Tom has 3 apples.", "He has 3 + 4 = <<3+").as_dict()
    assert (cut["truncated"], cut["no_final_answer"]) == (1.0, 1.0)


def test_verifier_messages_carry_question_and_answer() -> None:
    messages = verifier_messages(answer("#### 7", prompt="What is 3 + 4?"))
    assert messages[0]["role"] == "system"
    assert "What is 3 + 4?" in messages[1]["content"]
    assert "#### 7" in messages[1]["content"]
    long = verifier_messages(answer("x" * 20000))
    assert len(long[1]["content"]) < 7000


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ("Yes", True),
        ("yes.", True),
        ("**No**", False),
        ("incorrect", False),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_yes_no(reply: str, said: bool | None) -> None:
    assert parse_yes_no(reply) is said


def test_verifier_gate_verdicts() -> None:
    gate = VerifierModelGate("smart", min_yes=0.7)
    assert gate.judge(answer("#### 7")).reason == "needs-verifier-call"
    assert gate.verdict("yes").passed
    assert not gate.verdict("no").passed
    unclear = gate.verdict("hmm", token_logprob=math.log(0.9))
    assert (unclear.passed, unclear.reason) == (True, "verifier-unclear")
    unsure = gate.verdict("yes", token_logprob=math.log(0.6))
    assert (unsure.passed, unsure.score) == (False, pytest.approx(0.6))
    assert gate.verdict("no", token_logprob=math.log(0.1)).passed  # P(yes) ~ 0.9
