from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from gateway.escalation.gates import Gate, GateSpec, Verdict, build_gates
from tests.unit.escalation.conftest import answer

SPECS: TypeAdapter[list[GateSpec]] = TypeAdapter(list[GateSpec])
GOOD = "3 + 4 = <<3+4=7>>7 apples.\n#### 7"


def gate(spec: dict[str, object], base_dir: Path = Path()) -> Gate:
    (built,) = build_gates(SPECS.validate_python([spec]), base_dir)
    return built


def judge(spec: dict[str, object], text: str, **kw: object) -> Verdict:
    return gate(spec).judge(answer(text, **kw))  # type: ignore[arg-type]


JSON_OBJECT = {"type": "json_object"}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
    },
}


class TestSchemaGate:
    def test_plain_text_requests_pass(self) -> None:
        verdict = judge({"kind": "schema"}, "not json at all")
        assert (verdict.gate, verdict.passed, verdict.reason) == ("schema", True, "no-json-format")

    def test_json_object_must_parse(self) -> None:
        assert judge({"kind": "schema"}, '{"a": 1}', response_format=JSON_OBJECT).passed
        bad = judge({"kind": "schema"}, '{"a": 1', response_format=JSON_OBJECT)
        assert not bad.passed
        assert bad.reason.startswith("invalid-json")

    def test_request_schema_is_applied_with_the_failing_path(self) -> None:
        ok = judge({"kind": "schema"}, '{"name": "Ann", "age": 30}', response_format=PERSON)
        assert (ok.passed, ok.reason) == (True, "schema-ok")
        bad = judge({"kind": "schema"}, '{"name": "Ann", "age": "30"}', response_format=PERSON)
        assert not bad.passed
        assert bad.reason.startswith("schema:$.age:")
        missing = judge({"kind": "schema"}, '{"name": "Ann"}', response_format=PERSON)
        assert "age" in missing.reason

    def test_request_schemas_are_compiled_once(self) -> None:
        g = gate({"kind": "schema"})
        for _ in range(3):
            g.judge(answer('{"name": "A", "age": 1}', response_format=PERSON))
        assert len(g.request_validators._cache) == 1  # type: ignore[attr-defined]

    def test_rules_schema_applies_to_every_answer(self) -> None:
        spec = {"kind": "schema", "schema": {"type": "object", "required": ["id"]}}
        assert judge(spec, '{"id": 1}').passed
        assert not judge(spec, '{"x": 1}').passed
        assert judge(spec, "plain").reason.startswith("invalid-json")

    def test_fences_fail_unless_allowed(self) -> None:
        fenced = '```json\n{"a": 1}\n```'
        assert not judge({"kind": "schema"}, fenced, response_format=JSON_OBJECT).passed
        spec = {"kind": "schema", "allow_fences": True}
        assert judge(spec, fenced, response_format=JSON_OBJECT).passed

    def test_truncated_json_fails(self) -> None:
        verdict = judge(
            {"kind": "schema"}, '{"a": 1}', response_format=JSON_OBJECT, finish_reason="length"
        )
        assert (verdict.passed, verdict.reason) == (False, "truncated")

    def test_an_unusable_request_schema_does_not_escalate(self) -> None:
        fmt = {"type": "json_schema", "json_schema": {"schema": {"type": "no-such-type"}}}
        verdict = judge({"kind": "schema"}, '{"a": 1}', response_format=fmt)
        assert verdict.passed
        assert "unusable" in verdict.reason


class TestPatternGate:
    def test_match_and_no_match(self) -> None:
        spec = {"kind": "pattern", "regex": r"#### -?\d+"}
        assert judge(spec, GOOD).passed
        assert judge(spec, "The answer is 7.").reason == "no-match"

    def test_ignore_case(self) -> None:
        spec = {"kind": "pattern", "regex": "^answer:", "ignore_case": True}
        assert judge(spec, "ANSWER: B").passed


class TestAnswerPresentGate:
    @pytest.mark.parametrize(
        ("form", "text"),
        [
            ("hash_number", GOOD),
            ("boxed", "so \\boxed{7}"),
            ("answer_is", "Adding them, the answer is 7."),
            ("choice_letter", "Answer: B"),
            ("auto", "3 + 4 = 7\nFinal answer: 7"),
        ],
    )
    def test_forms(self, form: str, text: str) -> None:
        assert judge({"kind": "answer_present", "form": form}, text).passed

    @pytest.mark.parametrize("text", ["I do not know", "A cat sat on the mat.", "Hmm."])
    def test_choice_letter_needs_a_letter_answer(self, text: str) -> None:
        assert not judge({"kind": "answer_present", "form": "choice_letter"}, text).passed

    def test_no_final_answer(self) -> None:
        verdict = judge({"kind": "answer_present"}, "We add the apples together and that is it.")
        assert (verdict.passed, verdict.reason) == (False, "no-final-answer")

    def test_cut_off_mid_computation(self) -> None:
        verdict = judge({"kind": "final_answer"}, "Tom has 3 + 4 = <<3+")
        assert (verdict.gate, verdict.passed, verdict.reason) == (
            "final_answer",
            False,
            "truncated",
        )

    def test_max_tokens_stop_is_truncation(self) -> None:
        verdict = judge({"kind": "answer_present"}, GOOD, finish_reason="length")
        assert verdict.reason == "truncated"

    def test_answer_stated_early_then_more_working_fails(self) -> None:
        text = "#### 7\n" + "More working that goes on and on without an end. " * 10
        assert not judge({"kind": "answer_present", "form": "hash_number"}, text).passed


class TestArithmeticGate:
    def test_correct_working_passes_with_its_score(self) -> None:
        verdict = judge({"kind": "arithmetic"}, GOOD)
        assert (verdict.passed, verdict.score) == (True, 1.0)

    def test_a_slip_fails_and_names_it(self) -> None:
        verdict = judge({"kind": "arithmetic"}, "3 + 4 = <<3+4=8>>8\n#### 8")
        assert not verdict.passed
        assert verdict.reason == "3+4 != 8"
        assert verdict.score == 0.0  # the annotation and the sentence are both wrong
        half = judge({"kind": "arithmetic"}, "3 + 4 = 7 and 2 * 5 = 11")
        assert half.score == pytest.approx(0.5)

    def test_allowed_failures(self) -> None:
        assert judge({"kind": "arithmetic", "max_failures": 1}, "3 + 4 = 8").passed

    def test_no_computations_pass(self) -> None:
        assert judge({"kind": "arithmetic"}, "Seven.").reason == "no-computations"


class TestLogprobGate:
    def test_confident_answer_passes(self) -> None:
        verdict = judge({"kind": "logprob", "min_mean": -0.5}, "7", token_logprobs=(-0.1, -0.2))
        assert verdict.passed
        assert verdict.gate == "confidence"
        assert verdict.score == pytest.approx(math.exp(-0.15))

    def test_low_mean_or_low_token_fails(self) -> None:
        spec = {"kind": "logprob", "min_mean": -0.5, "min_token": -2.0}
        assert "mean" in judge(spec, "7", token_logprobs=(-1.0, -1.0)).reason
        low = judge(spec, "7", token_logprobs=(-0.01,) * 10 + (-2.5,))
        assert (low.passed, low.reason.startswith("token-logprob")) == (False, True)

    def test_missing_logprobs_pass_or_fail_as_configured(self) -> None:
        assert judge({"kind": "logprob"}, "7").reason == "no-logprobs"
        assert not judge({"kind": "logprob", "missing": "fail"}, "7").passed

    def test_needs_logprobs(self) -> None:
        assert gate({"kind": "logprob"}).needs_logprobs
        assert not gate({"kind": "arithmetic"}).needs_logprobs


class TestAnswerProbGate:
    def test_first_token_probability(self) -> None:
        spec = {"kind": "answer_prob", "min_prob": 0.7}
        assert judge(spec, "B", token_logprobs=(math.log(0.9),)).passed
        verdict = judge(spec, "B", token_logprobs=(math.log(0.5),))
        assert (verdict.passed, verdict.score) == (False, pytest.approx(0.5))

    def test_labels_renormalise_over_the_label_tokens(self) -> None:
        spec = {"kind": "answer_prob", "min_prob": 0.7, "labels": ["A", "B", "C", "D"]}
        top = (("B", math.log(0.45)), (" A", math.log(0.05)), ("The", math.log(0.5)))
        verdict = judge(spec, "B", first_token_top=top, token_logprobs=(math.log(0.45),))
        assert verdict.passed  # 0.45 / (0.45 + 0.05) = 0.9 among the labels
        assert verdict.score == pytest.approx(0.9)
        close = (("B", math.log(0.5)), ("C", math.log(0.4)))
        assert not judge(spec, "B", first_token_top=close).passed

    def test_the_label_said_is_read_as_a_whole_token(self) -> None:
        spec = {"kind": "answer_prob", "min_prob": 0.7, "labels": ["A", "B"]}
        top = (("A", math.log(0.2)), ("B", math.log(0.6)))
        said_a = judge(spec, "(A) because", first_token_top=top)
        assert said_a.score == pytest.approx(0.25)
        # "Answer: ..." does not start with a label: the likeliest label's share is used.
        assert judge(spec, "Answer: B", first_token_top=top).score == pytest.approx(0.75)

    def test_top_alternatives_alone(self) -> None:
        spec = {"kind": "answer_prob", "min_prob": 0.5}
        assert judge(spec, "B", first_token_top=(("B", math.log(0.6)),)).passed

    def test_missing(self) -> None:
        assert judge({"kind": "answer_prob"}, "B").passed
        assert not judge({"kind": "answer_prob", "missing": "fail"}, "B").passed


class TestSelfConsistencyGate:
    def test_asks_for_samples(self) -> None:
        assert gate({"kind": "self_consistency", "samples": 4}).samples == 4

    def test_agreeing_samples_pass(self) -> None:
        spec = {"kind": "self_consistency", "samples": 2, "min_agreement": 0.6}
        verdict = judge(spec, GOOD, samples=("so #### 7", "#### 7.00"))
        assert (verdict.passed, verdict.score) == (True, 1.0)

    def test_outvoted_answer_fails(self) -> None:
        spec = {"kind": "self_consistency", "samples": 4, "min_agreement": 0.3}
        verdict = judge(spec, GOOD, samples=("#### 8", "#### 8", "#### 8", "#### 7"))
        assert not verdict.passed  # 40% agree, above the minimum, but 8 has the majority
        assert verdict.score == pytest.approx(0.4)

    def test_too_little_agreement_fails(self) -> None:
        spec = {"kind": "self_consistency", "samples": 3, "min_agreement": 0.6}
        assert not judge(spec, GOOD, samples=("#### 7", "#### 9", "#### 8")).passed

    def test_no_samples_pass(self) -> None:
        assert judge({"kind": "self_consistency"}, GOOD).reason == "no-samples"


class TestLearnedGate:
    def test_scores_and_threshold_from_the_share(self, artifact_dir: Path) -> None:
        spec = {"kind": "learned", "artifact": "artifacts/gate.json", "escalate_share": 0.2}
        g = gate(spec, artifact_dir)
        assert g.threshold == pytest.approx(0.8)  # type: ignore[attr-defined]
        ok = g.judge(answer(GOOD))
        assert ok.passed
        assert ok.score == pytest.approx(1 / (1 + math.exp(2.5)))
        bad = g.judge(answer("I am not sure how to do this one"))
        assert (bad.passed, bad.gate) == (False, "learned")
        assert bad.score == pytest.approx(1 / (1 + math.exp(-2.5)))

    def test_share_zero_never_fails(self, artifact_dir: Path) -> None:
        spec = {"kind": "learned", "artifact": "artifacts/gate.json", "escalate_share": 0.0}
        assert gate(spec, artifact_dir).judge(answer("no answer here")).passed

    def test_prompt_filter(self, artifact_dir: Path) -> None:
        spec = {"kind": "learned", "artifact": "artifacts/gate.json", "when_prompt_matches": r"\d"}
        verdict = gate(spec, artifact_dir).judge(answer("hello", prompt="Say hi"))
        assert (verdict.passed, verdict.reason) == (True, "not-applicable")

    def test_the_artifact_may_be_its_directory(self, artifact_dir: Path) -> None:
        spec = {"kind": "learned", "artifact": "artifacts", "escalate_share": 0.2}
        assert not gate(spec, artifact_dir).judge(answer("no answer here")).passed

    def test_missing_artifact_fails_at_build(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="cannot load"):
            gate({"kind": "learned", "artifact": "nope.json"}, tmp_path)


def test_build_gates_keeps_order_and_names(artifact_dir: Path) -> None:
    specs = SPECS.validate_python(
        [
            {"kind": "schema"},
            {"kind": "pattern", "regex": "x"},
            {"kind": "answer_present"},
            {"kind": "arithmetic"},
            {"kind": "logprob"},
            {"kind": "answer_prob"},
            {"kind": "self_consistency"},
            {"kind": "learned", "artifact": "artifacts/gate.json"},
            {"kind": "verifier", "alias": "smart"},
        ]
    )
    gates = build_gates(specs, artifact_dir)
    assert [g.name for g in gates] == [
        "schema",
        "pattern",
        "answer_present",
        "arithmetic",
        "confidence",
        "answer_prob",
        "self_consistency",
        "learned",
        "verifier",
    ]
    assert [g.samples for g in gates] == [0, 0, 0, 0, 0, 0, 3, 0, 0]


def test_answer_present_can_be_limited_to_prompts_that_match() -> None:
    judged = gate({"kind": "answer_present", "when_prompt_matches": r"\d"})
    chatty = judged.judge(answer("Hello there, how can I help", prompt="Say hello"))
    assert chatty.passed and chatty.reason == "not-applicable"
    math_problem = judged.judge(answer("First we add the apples and then"))
    assert not math_problem.passed
