from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.escalation.conftest import rules_yaml

ROOT = Path(__file__).resolve().parents[3]


def test_eval_escalation_command_prints_json_last(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    rows = [
        {"prompt": "3 + 4?", "weak": 1, "strong": 1, "weak_response": "3 + 4 = 7\n#### 7"},
        {"prompt": "3 + 5?", "weak": 0, "strong": 1, "weak_response": "3 + 5 = 9\n#### 9"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml("[{kind: arithmetic}]"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "eval",
            "escalation",
            "--data",
            str(data),
            "--rules",
            str(rules),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last == {"prompts": 2, "escalation_rate": 0.5, "accuracy": 1.0, "gap_recovered": 1.0}
