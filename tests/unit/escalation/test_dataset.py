from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.escalation.dataset import in_test_split, prompt_hash, read_rows, select


def test_rows_accept_chat_prompts_and_boolean_labels(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2 + 2?"}]
    lines = [
        {"prompt": "1 + 1?", "weak": True, "strong": 1.0, "weak_response": "#### 2", "x": 1},
        {"prompt": chat, "weak": 0, "strong": 0, "weak_response": "#### 5"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    rows = read_rows(path)
    assert [(r.prompt, r.weak, r.strong) for r in rows] == [("1 + 1?", 1, 1), ("2 + 2?", 0, 0)]


def test_a_row_without_fields_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "weak": 1, "strong": 1, "weak_response": ""}\n{"weak": 1}\n')
    with pytest.raises(ValueError, match=r"d\.jsonl:2: bad row"):
        read_rows(path)


def test_the_split_is_a_stable_hash_of_the_prompt() -> None:
    prompts = [f"question {i}" for i in range(1000)]
    held = [p for p in prompts if in_test_split(p)]
    assert 0.25 < len(held) / len(prompts) < 0.35
    assert in_test_split("  question 1 ") == in_test_split("question 1")
    assert prompt_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_select_refuses_unknown_splits() -> None:
    with pytest.raises(ValueError, match="all, train or test"):
        select([], "dev")
