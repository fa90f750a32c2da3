from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from gateway.escalation.gates import GateSpec
from gateway.escalation.specs import (
    AnswerPresentGateSpec,
    LearnedGateSpec,
    SchemaGateSpec,
    SelfConsistencyGateSpec,
)
from gateway.eval.escalation_eval import DEFAULT_GATES, gates_for
from tests.unit.escalation.conftest import rules_yaml

SPECS: TypeAdapter[list[GateSpec]] = TypeAdapter(list[GateSpec])

YAML = r"""
- kind: schema
  schema: {type: object, required: [id]}
- kind: final_answer
  form: hash_number
- kind: learned
  artifact: artifacts/escalation/gate.json
  escalate_share: 0.25
- kind: self_consistency
  samples: 2
"""


def test_the_union_picks_the_model_by_kind() -> None:
    specs = SPECS.validate_python(yaml.safe_load(YAML))
    assert [type(s) for s in specs] == [
        SchemaGateSpec,
        AnswerPresentGateSpec,
        LearnedGateSpec,
        SelfConsistencyGateSpec,
    ]
    schema, final, learned, consistency = specs
    assert isinstance(schema, SchemaGateSpec)
    assert schema.json_schema == {"type": "object", "required": ["id"]}
    assert isinstance(final, AnswerPresentGateSpec)
    assert (final.kind, final.form) == ("final_answer", "hash_number")
    assert isinstance(learned, LearnedGateSpec)
    assert learned.escalate_share == 0.25
    assert isinstance(consistency, SelfConsistencyGateSpec)
    assert (consistency.samples, consistency.min_agreement) == (2, 0.6)


def _error(raw: object) -> str:
    with pytest.raises(ValidationError) as info:
        SPECS.validate_python(raw)
    return str(info.value)


def test_unknown_kind_and_unknown_keys_are_refused() -> None:
    assert "does not match any of the expected tags" in _error([{"kind": "vibes"}])
    assert "Extra inputs are not permitted" in _error([{"kind": "arithmetic", "tolerance": 1}])
    assert "Field required" in _error([{"kind": "pattern"}])


def test_bad_regex_schema_and_ranges_are_refused_at_load() -> None:
    assert "invalid regex" in _error([{"kind": "pattern", "regex": "(unclosed"}])
    assert "invalid JSON schema" in _error([{"kind": "schema", "schema": {"type": 5}}])
    assert "less than or equal to 1" in _error(
        [{"kind": "learned", "artifact": "a.json", "escalate_share": 2}]
    )
    assert "less than or equal to 0" in _error([{"kind": "logprob", "min_mean": 0.5}])
    assert "invalid regex" in _error(
        [{"kind": "learned", "artifact": "a", "when_prompt_matches": "["}]
    )


def test_specs_are_frozen() -> None:
    (spec,) = SPECS.validate_python([{"kind": "arithmetic"}])
    with pytest.raises(ValidationError):
        spec.max_failures = 3  # type: ignore[misc, union-attr]


def _rules(tmp_path: Path, gates: str | None) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_yaml(gates))
    return path


def test_gates_for_reads_the_validated_alias_block(tmp_path: Path) -> None:
    # The cheap target's key variable is unset: the evaluation calls no provider, so it passes.
    specs = gates_for(_rules(tmp_path, "[{kind: arithmetic}]"), "auto")
    assert [s.kind for s in specs] == ["arithmetic"]


def test_gates_for_defaults_without_a_block(tmp_path: Path) -> None:
    specs = gates_for(_rules(tmp_path, None), "auto")
    assert [s.kind for s in specs] == [g["kind"] for g in DEFAULT_GATES]


def test_gates_for_names_problems_by_dotted_path(tmp_path: Path) -> None:
    path = _rules(tmp_path, "[{kind: pattern}]")
    with pytest.raises(ValueError, match=r"aliases\.auto\.escalation\.gates\[0\]"):
        gates_for(path, "auto")
    with pytest.raises(ValueError, match="no alias 'smart'"):
        gates_for(_rules(tmp_path, None), "smart")


def test_the_shipped_default_gates_build(tmp_path: Path) -> None:
    from gateway.escalation.gates import build_gates

    root = Path(__file__).resolve().parents[3]
    specs = gates_for(root / "routing_rules/default.yaml", "auto")
    gates = build_gates(specs, root / "routing_rules")
    assert "learned" in [g.name for g in gates]


def test_schema_spec_by_field_name_or_yaml_key() -> None:
    by_key = SchemaGateSpec.model_validate({"kind": "schema", "schema": {"type": "object"}})
    by_name = SchemaGateSpec(kind="schema", json_schema={"type": "object"})
    assert by_key == by_name
