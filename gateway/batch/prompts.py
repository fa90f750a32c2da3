"""Semantic batching: many records in one prompt, each tagged with its id; answers matched by id.

Policy:
- The prompt lists records as lines ``[id=<id>] <fields>`` after the task's instruction (label
  codes ``<CODE> = <label>: <description>``, or a ``Schema: {...}`` line) and asks for one JSON
  object mapping each id to its answer. Short codes keep the answer to a few tokens a record.
- Answers are matched by id, never by position. An id that is missing, unknown or whose value
  does not fit (an unknown code, a non-object for extract) is a *skip*: the record goes back
  to the pool and is retried in a later call. A reply that is not a JSON object at all is
  *malformed*: the caller splits the call in halves and retries each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.batch.spec import JobSpec

_WS = re.compile(r"\s+")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


@dataclass(frozen=True, slots=True)
class Item:
    """One record as the prompt sees it: its id and its text (the prompt fields, joined)."""

    rid: str
    text: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """What came back for one call: answers by id, the ids skipped, or malformed."""

    answers: Mapping[str, Any]
    skipped: tuple[str, ...]
    malformed: bool = False


def record_text(record: Mapping[str, Any], spec: JobSpec) -> str:
    """The prompt text of one record: its prompt fields on one line (whitespace collapsed)."""
    names = spec.fields or [k for k in record if k != spec.id_field]
    if len(names) == 1:
        value = record.get(names[0], "")
        return _WS.sub(" ", str(value if value is not None else "")).strip()
    parts = (f"{n}: {record.get(n, '')}" for n in names)
    return _WS.sub(" ", " | ".join(parts)).strip()


def instruction(spec: JobSpec) -> str:
    """The fixed part of every prompt of this job (what one-record-per-call pays each time)."""
    lines: list[str] = []
    if spec.template.strip():
        lines.append(spec.template.strip())
    if spec.task == "classify":
        lines.append("Classify each record below into exactly one label. Labels, by code:")
        for code, label in zip(spec.codes(), spec.labels, strict=True):
            desc = f": {label.description.strip()}" if label.description.strip() else ""
            lines.append(f"{code} = {label.name}{desc}")
        lines.append(
            'Answer with one JSON object mapping each record id to its code only, e.g. {"17": "A"}.'
        )
    elif spec.task == "extract":
        lines.append("Extract the fields below from each record, following this JSON schema.")
        lines.append("Schema: " + orjson.dumps(spec.schema_).decode())
        lines.append("Answer with one JSON object mapping each record id to its extracted object.")
    else:
        lines.append("Answer with one JSON object mapping each record id to your answer (text).")
    lines.append("Include every id exactly once. Records:")
    return "\n".join(lines)


def build_prompt(spec: JobSpec, items: Sequence[Item]) -> str:
    """The user message for one call."""
    body = "\n".join(f"[id={item.rid}] {item.text}" for item in items)
    return instruction(spec) + "\n" + body


def max_output_tokens(spec: JobSpec, count: int) -> int:
    """The output cap of a call of ``count`` records (braces and a little slack included)."""
    return 16 + count * spec.output_tokens_per_record


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = _FENCE.sub("", text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = orjson.loads(stripped[start : end + 1])
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _fits(spec: JobSpec, value: Any, codes: Mapping[str, str]) -> Any:
    """The resolved answer, or None when the value does not fit the task."""
    if spec.task == "classify":
        if isinstance(value, str) and value.strip().upper() in codes:
            return codes[value.strip().upper()]
        if isinstance(value, str) and value.strip() in codes.values():
            return value.strip()  # a model that answered the label itself
        return None
    if spec.task == "extract":
        return value if isinstance(value, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def parse_reply(spec: JobSpec, items: Sequence[Item], content: str | None) -> Parsed:
    """Match a reply to the call's records by id (see the module docstring)."""
    obj = _json_object(content or "")
    if obj is None:
        return Parsed({}, tuple(item.rid for item in items), malformed=True)
    by_id = {str(k).strip(): v for k, v in obj.items()}
    codes = spec.code_map()
    answers: dict[str, Any] = {}
    skipped: list[str] = []
    for item in items:
        resolved = _fits(spec, by_id.get(item.rid), codes) if item.rid in by_id else None
        if resolved is None:
            skipped.append(item.rid)
        else:
            answers[item.rid] = resolved
    return Parsed(answers, tuple(skipped))
