"""Where a job's records come from: a JSONL file, a CSV file, or a SQL query over a table.

Use ``read_records(spec)`` when a job is loaded into its checkpoint store; each record is a
mapping with the job's id field. Ids are kept as strings (results are matched by id text).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from gateway.batch.spec import JobSpec


class SourceInvalid(ValueError):
    """The input cannot be read, or a record lacks its id."""


def _jsonl(path: Path) -> Iterator[Mapping[str, Any]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise SourceInvalid(f"{path}:{n}: not JSON ({exc})") from exc
            if not isinstance(value, dict):
                raise SourceInvalid(f"{path}:{n}: a record must be a JSON object")
            yield value


def _csv(path: Path) -> Iterator[Mapping[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def _sql(url: str, query: str) -> Iterator[Mapping[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for row in conn.execute(sa.text(query)).mappings():
                yield dict(row)
    finally:
        engine.dispose()


def read_records(spec: JobSpec) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(id, record) in input order; a missing id or a repeated one stops the load."""
    if spec.sql is not None:
        rows = _sql(spec.input_db or spec.db, spec.sql)
    else:
        path = Path(spec.input or "")
        if not path.exists():
            raise SourceInvalid(f"{path}: no such file")
        rows = _csv(path) if path.suffix.lower() == ".csv" else _jsonl(path)
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        raw = row.get(spec.id_field)
        if raw is None or str(raw).strip() == "":
            raise SourceInvalid(f"record {n}: no {spec.id_field!r}")
        rid = str(raw).strip()
        if rid in seen:
            raise SourceInvalid(f"record {n}: id {rid!r} appears twice")
        seen.add(rid)
        yield rid, row
