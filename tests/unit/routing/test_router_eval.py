"""``tiergate eval router``: the configured artifact, the protocol's output, the last JSON line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.eval.router_eval import RouterEvalError, router_artifact_for, run_router_eval
from gateway.routing.split import split_of
from gateway.routing.train import train_router

RULES = """
targets:
  a: {provider: openai, model: weak, api_base: "http://127.0.0.1:1/v1"}
  b: {provider: openai, model: strong, api_base: "http://127.0.0.1:1/v1"}
aliases:
  auto:
    tiers: [{name: cheap, targets: [a]}, {name: strong, targets: [b]}]
    router: {kind: learned, artifact: artifacts/r, strong_share: 0.2}
  plain:
    targets: [a]
"""


def data_file(path: Path) -> Path:
    rows = []
    for i in range(200):
        hard = i % 2 == 1
        prompt = f"Prove theorem {i} about integrals" if hard else f"Greet person {i} kindly"
        rows.append({"prompt": prompt, "weak": 0 if hard else 1, "strong": 1, "subject": "x"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    data = data_file(root / "data.jsonl")
    train_router([data], root / "artifacts" / "r", use_embedding=False, dim=512, log=io.StringIO())
    (root / "rules.yaml").write_text(RULES)
    return root / "rules.yaml"


def test_router_artifact_for_resolves_relative_to_the_rules_file(rules: Path) -> None:
    assert router_artifact_for(rules, "auto") == (rules.parent / "artifacts" / "r").resolve()
    with pytest.raises(RouterEvalError, match="no router block"):
        router_artifact_for(rules, "plain")
    with pytest.raises(RouterEvalError, match="no alias"):
        router_artifact_for(rules, "missing")


def test_eval_prints_the_curve_then_the_summary_as_the_last_line(rules: Path) -> None:
    out = io.StringIO()
    code = run_router_eval([rules.parent / "data.jsonl"], rules, "auto", "all", out)
    assert code == 0
    lines = out.getvalue().strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary) == {"prompts", "apgr", "cpt50", "cpt80"}
    assert summary["prompts"] == 200
    # The words separate the kinds: a perfect router, whose APGR is 0.75 when half the prompts gain.
    assert summary["apgr"] == pytest.approx(0.75)
    assert any("strong%" in line for line in lines)


def test_split_test_keeps_only_the_held_out_prompts(rules: Path) -> None:
    data = rules.parent / "data.jsonl"
    held_out = sum(
        split_of(json.loads(line)["prompt"]) == "test" for line in data.read_text().splitlines()
    )
    out = io.StringIO()
    assert run_router_eval([data], rules, "auto", "test", out) == 0
    assert json.loads(out.getvalue().strip().splitlines()[-1])["prompts"] == held_out


def test_bad_rows_and_aliases_exit_2(rules: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    assert run_router_eval([bad], rules, "auto", "all", io.StringIO()) == 2
    assert run_router_eval([bad], rules, "plain", "all", io.StringIO()) == 2
