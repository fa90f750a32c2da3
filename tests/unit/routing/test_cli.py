"""The typer commands: ``tiergate train router`` and ``tiergate eval router`` wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.__main__ import _add_subcommands, app


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    _add_subcommands()
    return app


def rows(path: Path) -> Path:
    lines = [
        json.dumps(
            {
                "prompt": f"{'Prove lemma' if i % 2 else 'Greet'} {i}",
                "weak": i % 2 == 0,
                "strong": 1,
            }
        )
        for i in range(120)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_router_writes_an_artifact(cli: typer.Typer, tmp_path: Path) -> None:
    data = rows(tmp_path / "d.jsonl")
    result = CliRunner().invoke(
        cli,
        ["train", "router", "--data", str(data), "--out", str(tmp_path / "a"), "--no-embedding"],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "router.json").exists()
    assert (tmp_path / "a" / "weights.npz").exists()


def test_train_router_refuses_a_missing_file(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["train", "router", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2


def test_eval_router_is_registered_and_checks_split(cli: typer.Typer, tmp_path: Path) -> None:
    data = rows(tmp_path / "d.jsonl")
    result = CliRunner().invoke(cli, ["eval", "router", "--data", str(data), "--split", "dev"])
    assert result.exit_code == 2
    assert "split" in result.output
