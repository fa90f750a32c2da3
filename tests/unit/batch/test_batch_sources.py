"""Job input: JSONL, CSV and a SQL query over a table; ids checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.batch.sources import SourceInvalid, read_records
from gateway.batch.spec import JobSpec


def spec(**fields: object) -> JobSpec:
    return JobSpec.model_validate({"labels": ["a", "b"]} | fields)


def test_jsonl_and_csv(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"id": 1, "text": "x"}\n\n{"id": "2", "text": "y"}\n')
    (tmp_path / "r.csv").write_text("key,text\nk1,x\nk2,y\n")
    got = [rid for rid, _ in read_records(spec(input=str(tmp_path / "r.jsonl")))]
    assert got == ["1", "2"]
    rows = list(read_records(spec(input=str(tmp_path / "r.csv"), id_field="key")))
    assert [(rid, row["text"]) for rid, row in rows] == [("k1", "x"), ("k2", "y")]


def test_a_sql_query_over_a_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table answers (id integer, body text, year integer)"))
        conn.execute(sa.text("insert into answers values (1, 'a', 2025), (2, 'b', 2026)"))
    engine.dispose()
    job = spec(sql="select id, body from answers where year = 2026", input_db=url)
    assert [(rid, row["body"]) for rid, row in read_records(job)] == [("2", "b")]


def test_missing_or_repeated_ids_stop_the_load(tmp_path: Path) -> None:
    (tmp_path / "dup.jsonl").write_text('{"id": 1}\n{"id": 1}\n')
    with pytest.raises(SourceInvalid, match="appears twice"):
        list(read_records(spec(input=str(tmp_path / "dup.jsonl"))))
    (tmp_path / "none.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(SourceInvalid, match="no 'id'"):
        list(read_records(spec(input=str(tmp_path / "none.jsonl"))))
