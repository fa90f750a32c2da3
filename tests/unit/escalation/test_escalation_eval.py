from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.eval.escalation_eval import main, run_escalation_eval
from tests.unit.escalation.conftest import rules_yaml

RIGHT = "3 + 4 = <<3+4=7>>7\n#### 7"
SLIP = "3 + 4 = <<3+4=8>>8\n#### 8"
CUT = "He has 3 + 4 = <<3+"
WORDS = "I do not know how to answer this question without more information."


def _write(tmp_path: Path, rows: list[tuple[str, int, int]]) -> Path:
    path = tmp_path / "data.jsonl"
    lines = [
        json.dumps(
            {
                "prompt": f"Question {i}: 3 + 4?",
                "weak": w,
                "strong": s,
                "weak_response": text,
                "strong_response": "ignored",
            }
        )
        for i, (text, w, s) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rules(tmp_path: Path, gates: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_yaml(gates))
    return path


ROWS = [(RIGHT, 1, 1), (SLIP, 0, 1), (CUT, 0, 1), (WORDS, 0, 0), (RIGHT, 1, 0)]


def test_rule_gates_operating_point(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "[{kind: arithmetic}, {kind: answer_present}]")
    lines, figures = run_escalation_eval(_write(tmp_path, ROWS), rules, "auto")
    # escalated: SLIP (arithmetic), CUT and WORDS (no answer) -> 3 of 5
    # accuracy: 1 + 1 + 1 + 0 + 1 = 4/5; weak 2/5, strong 3/5 -> (0.8 - 0.4) / 0.2 = 2.0:
    # better than the strong model alone (it got the last row wrong, never escalated)
    assert figures == {"prompts": 5, "escalation_rate": 0.6, "accuracy": 0.8, "gap_recovered": 2.0}
    assert lines[0].startswith("prompts 5: weak 40.0%, strong 60.0%")
    assert any(line.startswith("failures:") and "arithmetic 1" in line for line in lines)


def test_learned_gate_adds_the_sweep(tmp_path: Path, artifact_dir: Path) -> None:
    rules = artifact_dir / "rules.yaml"
    rules.write_text(
        rules_yaml(
            "[{kind: arithmetic}, {kind: learned, artifact: artifacts, escalate_share: 0.2}]"
        )
    )
    lines, figures = run_escalation_eval(_write(tmp_path, ROWS), rules, None)
    assert any("+ learned never" in line for line in lines)
    assert any("+ learned >= -inf" in line for line in lines)
    assert figures["escalation_rate"] == 0.6  # SLIP by arithmetic; CUT, WORDS by the model


def test_main_prints_the_json_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = _rules(tmp_path, "[{kind: arithmetic}]")
    assert main(_write(tmp_path, ROWS), rules, "auto", "all") == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {
        "prompts": 5,
        "escalation_rate": 0.2,
        "accuracy": 0.6,
        "gap_recovered": 1.0,
    }


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    rules = _rules(tmp_path, "[{kind: arithmetic}]")
    assert main(bad, rules, "auto", "all") == 2
    assert "bad.jsonl:1: bad row" in capsys.readouterr().out


def test_split_test_keeps_only_held_out_prompts(tmp_path: Path) -> None:
    from gateway.escalation.dataset import in_test_split, read_rows, select

    rows = [(RIGHT, 1, 1)] * 40
    data = _write(tmp_path, rows)
    held = select(read_rows(data), "test")
    assert held
    assert all(in_test_split(r.prompt) for r in held)
    assert len(held) + len(select(read_rows(data), "train")) == 40
    rules = _rules(tmp_path, "[{kind: arithmetic}]")
    _, figures = run_escalation_eval(data, rules, "auto", "test")
    assert figures["prompts"] == len(held)
