from __future__ import annotations

from pathlib import Path

import pytest

from gateway.demo import DEMO_KEY
from gateway.governance.keystore import hash_key
from gateway.rules import RulesInvalid, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
targets:
  a: {provider: openai, model: m1, api_base: "http://127.0.0.1:1/v1"}
  b: {provider: litellm, model: anthropic/claude, api_base: "http://127.0.0.1:2"}
aliases:
  fast: {targets: [a, b]}
"""


def test_shipped_rules_are_valid_and_hold_the_demo_key() -> None:
    rules = load_rules(ROOT / "routing_rules/default.yaml")
    assert any(k.sha256 == hash_key(DEMO_KEY) for k in rules.keys)
    assert rules.aliases["fast"].targets[0] in rules.targets


def test_version_defaults_to_content_hash() -> None:
    one = parse_rules(GOOD, "x", env={})
    two = parse_rules(GOOD + "\n# comment\n", "x", env={})
    assert one.config_version != two.config_version
    assert len(one.config_version) == 12


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace("[a, b]", "[a, sonet]"), "aliases.fast.targets[1]: unknown target 'sonet'"),
        (GOOD.replace("provider: openai", "provider: opnai"), "targets.a.provider:"),
        (GOOD.replace("model: m1,", "model: m1, temprature: 1,"), "targets.a.temprature:"),
        (GOOD.replace('"http://127.0.0.1:1/v1"', '"ftp://x"'), "targets.a.api_base:"),
        (GOOD.replace("anthropic/claude", "claude"), "targets.b.model:"),
        (GOOD.replace("[a, b]", "[]"), "aliases.fast.targets:"),
        (GOOD + "keys: [{id: k, sha256: nothex}]", "keys[0].sha256:"),
        (
            GOOD.replace(
                'api_base: "http://127.0.0.1:1/v1"',
                'api_base: "http://127.0.0.1:1/v1", api_key_env: NOPE_KEY',
            ),
            "targets.a.api_key_env: environment variable NOPE_KEY is not set",
        ),
        ("targets: [", "(root): not valid YAML"),
    ],
)
def test_problems_are_reported_by_dotted_path(text: str, problem: str) -> None:
    with pytest.raises(RulesInvalid) as info:
        parse_rules(text, "rules.yaml", env={})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
