"""A job's results: one row per record with its answer(s) and provenance; export and report.

With two models, each record keeps both answers (``answer_<alias>``), ``disagree`` says whether
they differ, and ``answer`` is the tie-breaker's when there is one, else the first model's when
both agree, else empty (a disagreement left for a person). Use ``result_rows`` for both the
JSONL/CSV export and the crash drill's checks.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.batch.spec import JobSpec
from gateway.batch.store import DONE, Store

PROVENANCE = (
    "model",
    "target",
    "config_version",
    "template_hash",
    "attempts",
    "done_key",
    "worker",
)


def result_rows(spec: JobSpec, store: Store) -> Iterator[dict[str, Any]]:
    """One dict per record, in input order (see the module docstring)."""
    current: dict[str, Any] | None = None
    for unit in store.rows(spec.job_id):
        if current is None or current["id"] != unit.rid:
            if current is not None:
                yield _finish(spec, current)
            current = {"id": unit.rid, "record": orjson.loads(unit.record), "by_alias": {}}
        value = orjson.loads(unit.result) if unit.status == DONE and unit.result else None
        current["by_alias"][unit.alias] = {
            "status": unit.status,
            "answer": value,
            "job": spec.job_id,
            **{name: getattr(unit, name) for name in PROVENANCE},
        }
    if current is not None:
        yield _finish(spec, current)


def _finish(spec: JobSpec, row: dict[str, Any]) -> dict[str, Any]:
    by = row.pop("by_alias")
    first = by.get(spec.alias, {})
    out: dict[str, Any] = {**row, "status": first.get("status"), "answer": first.get("answer")}
    out["provenance"] = {k: v for k, v in first.items() if k not in ("answer", "status")}
    if spec.second_alias:
        second = by.get(spec.second_alias, {})
        a, b = first.get("answer"), second.get("answer")
        out[f"answer_{spec.alias}"] = a
        out[f"answer_{spec.second_alias}"] = b
        out["disagree"] = a is not None and b is not None and a != b
        if spec.tie_breaker and spec.tie_breaker in by:
            out[f"answer_{spec.tie_breaker}"] = by[spec.tie_breaker].get("answer")
            out["answer"] = by[spec.tie_breaker].get("answer")
        elif out["disagree"]:
            out["answer"] = None
        out["provenance_second"] = {
            k: v for k, v in second.items() if k not in ("answer", "status")
        }
    return out


def export(spec: JobSpec, store: Store, path: Path) -> int:
    """Write the results as JSONL or CSV (by the file's suffix); returns rows written."""
    rows = result_rows(spec, store)
    count = 0
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer: csv.DictWriter[str] | None = None
            for row in rows:
                flat = _flat(row)
                if writer is None:
                    writer = csv.DictWriter(fh, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
                count += 1
        return count
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row, default=str) + b"\n")
            count += 1
    return count


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "record":
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = (
                    orjson.dumps(inner).decode() if isinstance(inner, dict | list) else inner
                )
        else:
            out[key] = orjson.dumps(value).decode() if isinstance(value, list) else value
    return out


def report(spec: JobSpec, store: Store) -> list[str]:
    """The final report: units by status per model, calls, tokens, cost, disagreements."""
    lines = [f"job {spec.job_id}"]
    for alias, c in sorted(store.counts(spec.job_id).items()):
        lines.append(
            f"  {alias}: {c['done']:,} done, {c['pending']:,} pending, {c['failed']:,} failed "
            f"(skips {c['skips']:,}, errors {c['errors']:,})"
        )
    t = store.call_totals(spec.job_id)
    lines.append(
        f"  calls {int(t['calls']):,} (replayed {int(t['replayed']):,}, after a crash "
        f"{int(t['resumed']):,}); tokens {int(t['prompt_tokens']):,} in, "
        f"{int(t['completion_tokens']):,} out; cost ${t['cost_usd']:,.4f}"
    )
    if spec.second_alias:
        disagreements = [r for r in result_rows(spec, store) if r.get("disagree")]
        lines.append(f"  disagreements between {spec.alias} and {spec.second_alias}: "
                     f"{len(disagreements):,}")  # fmt: skip
        for row in disagreements[:20]:
            lines.append(
                f"    {row['id']}: {row[f'answer_{spec.alias}']} vs "
                f"{row[f'answer_{spec.second_alias}']}"
                + (f" -> {row['answer']}" if spec.tie_breaker else "")
            )
    return lines
