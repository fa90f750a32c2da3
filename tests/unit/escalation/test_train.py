from __future__ import annotations

import json
import random
from pathlib import Path

from gateway.escalation.dataset import in_test_split, prompt_hash
from gateway.escalation.train import train_files
from gateway.escalation.verifier import load_model


def _synthetic(path: Path, n: int = 80) -> None:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        wrong = rng.random() < 0.4
        text = f"{a} + {b} = <<{a}+{b}={a + b + (1 if wrong else 0)}>>\n#### {a + b}"
        if wrong and rng.random() < 0.5:
            text = f"We have {a} + {b} = <<{a}+"
        lines.append(
            json.dumps(
                {
                    "prompt": f"Item {i}: add {a} and {b}.",
                    "weak": int(not wrong),
                    "strong": 1,
                    "weak_response": text,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")


def test_training_is_deterministic_and_never_sees_the_test_split(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    _synthetic(data)
    quick = {"c_grid": (0.1, 1.0), "repeats": 1}
    report = train_files(data, tmp_path / "one", tmp_path / "split.json", **quick)
    train_files(data, tmp_path / "two", None, **quick)
    one = (tmp_path / "one" / "gate.json").read_text()
    assert one == (tmp_path / "two" / "gate.json").read_text()
    model = load_model(tmp_path / "one" / "gate.json")
    assert model.score("add 3 and 4", "3 + 4 = <<3+") > model.score("add 3 and 4", "#### 7")
    manifest = json.loads((tmp_path / "split.json").read_text())
    prompts = [json.loads(line)["prompt"] for line in data.read_text().splitlines()]
    held = sorted(prompt_hash(p)[:16] for p in prompts if in_test_split(p))
    assert manifest["test_prompt_sha256_16"] == held
    assert report["data"]["train_rows"] + report["data"]["test_rows"] == len(prompts)
    assert [row["C"] for row in report["cv"]["table"]] == [0.1, 1.0]
    assert 0 <= report["recommended_escalate_share"] <= 0.5
