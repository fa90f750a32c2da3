"""rules_diff: dotted-path changes between two rules dumps; rules_watch: file stamps."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.rules import parse_rules
from gateway.rules_diff import diff, dump, flatten
from gateway.rules_watch import stamp

BASE = """
targets:
  a: {provider: openai, model: m1, api_base: 'http://x/v1'}
aliases:
  fast: {targets: [a]}
keys:
  - {id: k1, sha256: 'ab%s'}
"""


def rules(text: str) -> dict[str, object]:
    return dump(parse_rules(text % ("0" * 62), "test", env={}))


def test_defaults_written_out_are_no_change() -> None:
    old = rules(BASE)
    new = rules(BASE.replace("model: m1,", "model: m1, retries: 0,"))
    assert diff(old, new) == []


def test_changes_are_dotted_paths_and_keys_match_by_id() -> None:
    old = rules(BASE)
    new = rules(
        BASE.replace("model: m1", "model: m2").replace("fast: {targets: [a]}", "x: {targets: [a]}")
    )
    lines = [c.line() for c in diff(old, new)]
    assert '~ targets.a.model: "m1" -> "m2"' in lines
    assert any(line.startswith("+ aliases.x.targets:") for line in lines)
    assert any(line.startswith("- aliases.fast.targets:") for line in lines)
    assert "keys.k1.sha256" in flatten(old)


def test_stamp_follows_symlink_swaps(tmp_path: Path) -> None:
    for name in ("v1", "v2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "rules.yaml").write_text("same size\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "rules.yaml").symlink_to("..data/rules.yaml")
    first = stamp(tmp_path / "rules.yaml")
    tmp = tmp_path / "..tmp"
    tmp.symlink_to("v2")
    os.replace(tmp, tmp_path / "..data")
    second = stamp(tmp_path / "rules.yaml")
    assert first is not None and second is not None and first != second
    assert stamp(tmp_path / "missing.yaml") is None
