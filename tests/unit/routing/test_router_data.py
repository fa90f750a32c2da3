"""MT-bench in the eval format: contaminated questions dropped, first turn, both turns' mean."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.eval.router_data import STRONG_MODEL, WEAK_MODEL, mt_bench


def write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_mt_bench_rows(tmp_path: Path) -> None:
    folder = tmp_path / "mt_bench"
    folder.mkdir()
    write(
        folder / "question.jsonl",
        [
            {"question_id": 1, "category": "math", "turns": ["Add 2 and 2.", "Now triple it."]},
            {"question_id": 2, "category": "writing", "turns": ["Write a poem.", "Shorter."]},
        ],
    )
    write(folder / "contaminated_prompts.jsonl", [{"eval_prompt": "Shorter."}])
    scores = {(WEAK_MODEL, 1): 4, (WEAK_MODEL, 2): 8, (STRONG_MODEL, 1): 10, (STRONG_MODEL, 2): 9}
    write(
        folder / "judgements_scores.jsonl",
        [
            {"question_id": q, "model": m, "turn": t, "score": s}
            for q in (1, 2)
            for (m, t), s in scores.items()
        ],
    )
    rows = list(mt_bench(tmp_path))
    assert rows == [
        {"prompt": "Add 2 and 2.", "weak": 6.0, "strong": 9.5, "question_id": 1, "category": "math"}
    ]
