"""A batch job's definition: the YAML job file (and CLI flags over it), validated at the edge.

Use ``load_job(path, overrides)`` once at start; everything after works on the frozen ``JobSpec``.
Label codes are assigned here (A, B, C ... in the order the labels are listed, unless a label
sets its own ``code``), so the model answers with one letter and results resolve locally.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class JobInvalid(ValueError):
    """The job file or flags are invalid; the message names the dotted path."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Frozen):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,4}$")] | None = None


class Limits(_Frozen):
    """The provider's limits this job may use (the tightest between here and the gateway)."""

    tpm: Annotated[int, Field(ge=1)] | None = None
    rpm: Annotated[int, Field(ge=1)] | None = None
    share: Annotated[float, Field(gt=0, le=1)] = 1.0  # this worker's share, when not shared


class Price(_Frozen):
    """USD per million tokens, for cost when the gateway sends no cost header."""

    input_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    output_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0

    def usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / 1_000_000


def _default_codes(count: int) -> list[str]:
    letters = string.ascii_uppercase
    if count <= len(letters):
        return list(letters[:count])
    return [a + b for a in letters for b in letters][:count]


class JobSpec(_Frozen):
    """One job: where the records come from, what to ask, how fast, where checkpoints go."""

    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "job"
    input: str | None = None  # JSONL or CSV file
    sql: str | None = None  # a SELECT over a table, run on input_db (default: the checkpoint db)
    input_db: str | None = None
    id_field: str = "id"
    fields: list[str] | None = None  # None: every field but the id
    task: Literal["classify", "extract", "template"] = "classify"
    labels: list[Label] = []
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    template: str = ""  # the instruction for task template; also prepended for the others
    alias: str = "fast"
    second_alias: str | None = None  # two models: both labels kept, disagreements listed
    tie_breaker: str | None = None  # a third model for the disagreements
    records_per_call: Annotated[int, Field(ge=1, le=500)] = 20
    output_tokens_per_record: Annotated[int, Field(ge=1, le=4096)] = 8
    limits: Limits = Limits()
    workers: Annotated[int, Field(ge=1, le=256)] = 4  # concurrent calls in this process
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 6  # per record, then it is failed
    lease_s: Annotated[float, Field(gt=0, le=86400)] = 120.0
    price: Price = Price()
    confirm_above_usd: Annotated[float, Field(ge=0)] = 5.0
    db: str = "sqlite:///batch.db"
    table_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")] = "tg_batch_"
    temperature: float = 0.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("labels", mode="before")
    @classmethod
    def _short_labels(cls, value: object) -> object:
        # YAML users write `labels: [positive, negative]` or `labels: {positive: "..."}`.
        if isinstance(value, dict):
            return [{"name": k, "description": v or ""} for k, v in value.items()]
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _coherent(self) -> JobSpec:
        if (self.input is None) == (self.sql is None):
            raise ValueError("give exactly one of input (a file) and sql (a query)")
        if self.task == "classify" and len(self.labels) < 2:
            raise ValueError("task classify needs at least two labels")
        if self.task == "extract" and not self.schema_:
            raise ValueError("task extract needs a schema")
        if self.task == "template" and not self.template.strip():
            raise ValueError("task template needs a template")
        if self.tie_breaker and not self.second_alias:
            raise ValueError("tie_breaker needs second_alias")
        codes = [c.upper() for c in self.codes()]
        if len(set(codes)) != len(codes):
            raise ValueError("label codes must be unique")
        return self

    def codes(self) -> list[str]:
        """The code of each label, in order."""
        auto = iter(_default_codes(len(self.labels)))
        taken = {lab.code for lab in self.labels if lab.code}
        out = []
        for lab in self.labels:
            if lab.code:
                out.append(lab.code)
                continue
            code = next(auto)
            while code in taken:
                code = next(auto)
            out.append(code)
        return out

    def code_map(self) -> dict[str, str]:
        """Code (upper case) -> label name: how answers resolve locally."""
        return {c.upper(): lab.name for c, lab in zip(self.codes(), self.labels, strict=True)}

    def aliases(self) -> list[str]:
        """The models every record goes to (one, or two with disagreement detection)."""
        return [self.alias] + ([self.second_alias] if self.second_alias else [])


def template_hash(spec: JobSpec) -> str:
    """What makes two results comparable: the task, labels, schema and template."""
    material = orjson.dumps(
        {
            "task": spec.task,
            "labels": [lab.model_dump() for lab in spec.labels],
            "schema": spec.schema_,
            "template": spec.template,
            "fields": spec.fields,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(material).hexdigest()[:16]


def request_salt(spec: JobSpec) -> str:
    """What shapes a call's body besides its records: part of its Idempotency-Key."""
    return f"{template_hash(spec)}:{spec.output_tokens_per_record}:{spec.temperature}"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{path}: {item['msg']}")
    return "; ".join(parts)


def load_job(path: str | Path | None, overrides: dict[str, Any]) -> JobSpec:
    """The job file (optional) with the non-None CLI flags laid over it, validated."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise JobInvalid(f"{path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise JobInvalid(f"{path}: the top level must be a mapping")
        raw = dict(loaded or {})
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("tpm", "rpm"):
            raw["limits"] = {**dict(raw.get("limits") or {}), key: value}
        else:
            raw[key] = value
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise JobInvalid(_describe(exc)) from exc
