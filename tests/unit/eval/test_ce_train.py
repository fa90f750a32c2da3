"""The cross-encoder's hand-written training pairs: which files, which weight, and that no pair
of a held-out file is trained on (gateway.eval.ce_train)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.eval import ce_train

HELD_OUT = (
    "traps_tenth",
    "traps_eleventh",
    "traps_twelfth",
    "traps_thirteenth",
    "traps_fourteenth",
    "traps_fifteenth",
    "direction_tenth",
    "direction_sixteenth",
    "traps_seventeenth",
)


def _texts(name: str) -> set[tuple[str, str]]:
    text = (ce_train.WRITTEN_DIR / f"{name}.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {(r["a"], r["b"]) for r in rows if isinstance(r["a"], str)}


def test_written_pairs_are_the_listed_files_single_questions_only() -> None:
    pairs = ce_train.written_pairs()
    listed = set().union(*(_texts(name) for name in ce_train.WRITTEN_SETS))
    assert {(p[0], p[1]) for p in pairs} <= listed
    assert len(pairs) > 3000
    assert all(p[3].startswith("written-") for p in pairs)
    assert {p[2] for p in pairs} == {True, False}


def test_no_question_of_a_held_out_file_is_trained_on() -> None:
    assert not set(HELD_OUT) & set(ce_train.WRITTEN_SETS)
    trained = {ce_train._norm(t) for p in ce_train.written_pairs() for t in p[:2]}
    for name in HELD_OUT:
        assert not trained & {ce_train._norm(t) for pair in _texts(name) for t in pair}, name


def test_weights_by_kind() -> None:
    assert ce_train._weight("quora") == 1.0
    assert ce_train._weight("written-paraphrase") == ce_train.WRITTEN_WEIGHT
    assert ce_train._weight("negation") == ce_train.GENERATED_WEIGHT


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")


def test_written_pairs_skip_conversations_and_held_out_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = {"a": "How do I boil an egg?", "b": "Egg boiling: how?", "same": True, "category": "p"}
    shared = {"a": "What causes hiccups?", "b": "Why do we hiccup?", "same": True, "category": "p"}
    chat = {"a": [{"role": "user", "content": "hi"}], "b": "x", "same": False, "category": "m"}
    _write(tmp_path / "one.jsonl", [keep, shared, chat])
    # a held-out file reuses one question (other case, no question mark), inside a conversation
    turn = {"role": "user", "content": "what causes  HICCUPS"}
    _write(tmp_path / "redteam" / "other.jsonl", [{"a": [turn], "b": "y", "same": False}])
    monkeypatch.setattr(ce_train, "WRITTEN_SETS", ("one",))
    assert ce_train.written_pairs(tmp_path) == [
        ("How do I boil an egg?", "Egg boiling: how?", True, "written-p")
    ]


def test_written_dev_is_a_fifth_of_the_cached_questions_never_trained_on() -> None:
    train, dev = ce_train.written_pairs(split="train"), ce_train.written_pairs(split="dev")
    assert len(train) + len(dev) == len(ce_train.written_pairs())
    cached_train = {ce_train._norm(p[0]) for p in train}
    cached_dev = {ce_train._norm(p[0]) for p in dev}
    assert not cached_train & cached_dev
    assert 0.1 < len(cached_dev) / len(cached_train | cached_dev) < 0.3
    pooled = ce_train.written_dev()
    assert {p[3] for p in pooled} == {"written-trap", "written-same"}
    assert all((p[3] == "written-same") == p[2] for p in pooled)
    assert [p[:3] for p in pooled] == [p[:3] for p in dev]


def test_the_cli_recipe_is_the_shipped_one_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from gateway.train_cli import train_app

    seen: list[ce_train.Recipe] = []

    def run(out: object, target: float, precision: float, models: object, recipe: object) -> int:
        assert isinstance(recipe, ce_train.Recipe)
        seen.append(recipe)
        return 0

    monkeypatch.setattr(ce_train, "run_train", run)
    runner = CliRunner()
    for args in ([], ["--written", "--layers", "6"]):
        result = runner.invoke(train_app, ["cache-verifier", "--kind", "cross-encoder", *args])
        assert result.exit_code == 0, result.output
    assert seen[0] == ce_train.Recipe()
    assert not seen[0].written
    assert seen[1] == ce_train.Recipe(layers=6, written=True)


def test_recalibrate_writes_a_new_card_beside_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A handful of real dev pairs (the command reads the whole dev split): the card is
    # rewritten from them, the model's bytes and its training record are kept.
    from cache.cross_encoder import CE_ARTIFACT

    rows = {
        "traps": ce_train.string_rows("traps", "dev")[:60],
        "quora": ce_train.string_rows("quora", "dev")[:40],
    }
    monkeypatch.setattr(ce_train, "string_rows", lambda name, split, limit=None: rows[name])
    out = tmp_path / "ce" / "cross_encoder.onnx"
    out.parent.mkdir()
    out.write_bytes(CE_ARTIFACT.read_bytes())
    shipped = json.loads(CE_ARTIFACT.with_suffix(".json").read_text())
    out.with_suffix(".json").write_text(json.dumps({**shipped, "threshold": 0.123}))
    meta = ce_train.recalibrate(out, 0.005, 0.85, tmp_path / "models" / "cross-encoder")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card == meta
    assert card["calibrated_by"].endswith("--recalibrate")
    assert card["threshold"] != 0.123 and 0.0 < card["threshold"] <= 0.999
    assert card["data"]["train_pairs"] == shipped["data"]["train_pairs"]
    assert card["data"]["calibrated_on"] == {"split": "dev", "trap_pairs": 60, "quora_pairs": 40}
    assert out.read_bytes() == CE_ARTIFACT.read_bytes()


def test_the_cli_recalibrates_only_the_cross_encoder_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from gateway.train_cli import train_app

    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(ce_train, "run_recalibrate", lambda *args: calls.append(args) or 0)
    trees = tmp_path / "verifier.json"
    trees.write_text("{}")
    runner = CliRunner()
    base = ["cache-verifier", "--kind", "cross-encoder"]
    ok = runner.invoke(train_app, [*base, "--recalibrate", "--trees", str(trees)])
    assert ok.exit_code == 0, ok.output
    assert calls and calls[0][-1] == trees
    refused = {
        "--recalibrate": ["cache-verifier", "--kind", "trees", "--recalibrate"],
        "--trees": [*base, "--trees", str(trees)],
        "--layers": [*base, "--recalibrate", "--layers", "6"],
    }
    for hint, args in refused.items():
        result = runner.invoke(train_app, args)
        assert result.exit_code == 2, (args, result.output)
        assert hint in result.output
    assert len(calls) == 1


def test_recalibrate_refuses_a_model_of_another_recipe(tmp_path: Path) -> None:
    out = tmp_path / "cross_encoder.onnx"
    out.write_bytes(b"")
    card = {"layers": ce_train.Recipe().layers, "training": {"written_sets": ["traps"]}}
    out.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="shipped recipe"):
        ce_train.recalibrate(out, 0.005, 0.85, tmp_path)
    with pytest.raises(ValueError, match=r"a \.onnx file"):
        ce_train.run_recalibrate(tmp_path, 0.005, 0.85, tmp_path, None)
