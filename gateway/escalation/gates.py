"""Escalation gates (interface; the full set lands with the gates work).

A gate judges one answer of a cheaper tier, purely (no I/O): pass, or fail with a reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True, slots=True)
class Answer:
    prompt: str
    text: str
    finish_reason: str | None
    response_format: Mapping[str, Any] | None
    token_logprobs: tuple[float, ...] | None
    first_token_top: tuple[tuple[str, float], ...] | None
    samples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    gate: str
    passed: bool
    score: float | None
    reason: str


class Gate(Protocol):
    name: str
    needs_logprobs: bool
    samples: int

    def judge(self, answer: Answer) -> Verdict: ...


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemaSpec(_Spec):
    kind: Literal["schema"] = "schema"


class PatternSpec(_Spec):
    kind: Literal["pattern"] = "pattern"
    regex: str


class LogprobSpec(_Spec):
    kind: Literal["logprob"] = "logprob"
    min_mean: float = -0.5
    min_token: float = -5.0


GateSpec = Annotated[SchemaSpec | PatternSpec | LogprobSpec, Field(discriminator="kind")]


@dataclass(slots=True)
class SchemaGate:
    name: str = "schema"
    needs_logprobs: bool = False
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        if answer.response_format is None:
            return Verdict(self.name, True, None, "no-format")
        try:
            json.loads(answer.text)
        except ValueError:
            return Verdict(self.name, False, None, "invalid-json")
        return Verdict(self.name, True, None, "ok")


@dataclass(slots=True)
class PatternGate:
    pattern: re.Pattern[str]
    name: str = "pattern"
    needs_logprobs: bool = False
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        ok = self.pattern.search(answer.text) is not None
        return Verdict(self.name, ok, None, "ok" if ok else "no-match")


@dataclass(slots=True)
class LogprobGate:
    min_mean: float
    min_token: float
    name: str = "confidence"
    needs_logprobs: bool = True
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        lps = answer.token_logprobs
        if not lps:
            return Verdict(self.name, True, None, "no-logprobs")
        mean = sum(lps) / len(lps)
        ok = mean >= self.min_mean and min(lps) >= self.min_token
        return Verdict(self.name, ok, mean, "ok" if ok else "low-confidence")


def build_gates(
    specs: Sequence[SchemaSpec | PatternSpec | LogprobSpec], base_dir: Path
) -> tuple[Gate, ...]:
    del base_dir
    out: list[Gate] = []
    for spec in specs:
        if isinstance(spec, SchemaSpec):
            out.append(SchemaGate())
        elif isinstance(spec, PatternSpec):
            out.append(PatternGate(re.compile(spec.regex)))
        else:
            out.append(LogprobGate(spec.min_mean, spec.min_token))
    return tuple(out)
