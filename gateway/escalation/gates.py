"""Escalation gates: pure checks of a cheap tier's answer that say "ask the next tier".

Use ``build_gates(specs, base_dir)`` once per rules load (regexes, schemas and learned artifacts
are compiled and loaded there, never per request), then ``gate.judge(answer)`` per answer. The
escalation stage runs every gate of the alias and escalates when any fails.

Policy: a gate fails only on evidence. A gate that cannot judge an answer (no logprobs came back,
no samples were drawn, no JSON format was asked for, the learned gate's domain does not apply)
passes with a reason saying so, so a missing signal never doubles the bill. Gates are pure and
fast (no I/O); the verifier-model gate is the one exception by design: the stage makes its call
(see ``verifier_prompt.py``) and its ``judge`` only reports that it needs one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jsonschema.protocols import Validator

from gateway.escalation.answer_forms import Form, ends_with_answer, final_answer
from gateway.escalation.arithmetic import find_checks
from gateway.escalation.features import is_truncated
from gateway.escalation.json_checks import (
    Validators,
    compile_schema,
    first_error,
    parse_json,
    strip_fences,
)
from gateway.escalation.specs import (
    AnswerPresentGateSpec,
    AnswerProbGateSpec,
    ArithmeticGateSpec,
    GateSpec,
    LearnedGateSpec,
    LogprobGateSpec,
    PatternGateSpec,
    SchemaGateSpec,
    SelfConsistencyGateSpec,
    VerifierGateSpec,
)

__all__ = ["Answer", "Gate", "GateSpec", "Verdict", "build_gates"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gates see of one cheap-tier answer."""

    prompt: str  # the last user message's text
    text: str  # the cheap tier's answer text (choice 0)
    finish_reason: str | None
    response_format: Mapping[str, Any] | None  # the request's response_format, if any
    token_logprobs: tuple[float, ...] | None  # per-token logprobs of choice 0, if known
    first_token_top: tuple[tuple[str, float], ...] | None  # top alternatives of the 1st token
    samples: tuple[str, ...] = ()  # extra sampled answers (self-consistency), if any


@dataclass(frozen=True, slots=True)
class Verdict:
    """One gate's judgement of one answer."""

    gate: str  # the gate's name, e.g. "schema", "pattern", "confidence", "arithmetic"
    passed: bool
    score: float | None  # the gate's confidence/score when it has one
    reason: str  # short, e.g. "invalid-json", "schema:$.age: not an integer"


class Gate(Protocol):
    """A check of an answer; ``judge`` is pure, does no I/O and takes microseconds."""

    # Read-only members, so frozen dataclasses satisfy the protocol.
    @property
    def name(self) -> str: ...  # the gate's name in Verdicts and Notes

    @property
    def needs_logprobs(self) -> bool: ...  # the stage asks for logprobs when any gate needs them

    @property
    def samples(self) -> int: ...  # extra samples wanted (self-consistency), 0 if none

    def judge(self, answer: Answer) -> Verdict: ...


def _pass(gate: str, reason: str, score: float | None = None) -> Verdict:
    return Verdict(gate, True, score, reason)


def _fail(gate: str, reason: str, score: float | None = None) -> Verdict:
    return Verdict(gate, False, score, reason)


@dataclass(frozen=True, slots=True)
class SchemaGate:
    """JSON validity when JSON was asked for; schema validity when a schema was given."""

    fixed: Validator | None
    allow_fences: bool
    request_validators: Validators = field(default_factory=Validators)
    name: str = "schema"
    needs_logprobs: bool = False
    samples: int = 0

    def _validator(self, fmt: Mapping[str, Any] | None) -> Validator | str | None:
        if self.fixed is not None:
            return self.fixed
        if fmt is None or fmt.get("type") != "json_schema":
            return None
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return self.request_validators.get(schema) if isinstance(schema, Mapping) else None

    def judge(self, answer: Answer) -> Verdict:
        fmt = answer.response_format
        wants_json = self.fixed is not None or (
            fmt is not None and fmt.get("type") in ("json_object", "json_schema")
        )
        if not wants_json:
            return _pass(self.name, "no-json-format")
        if answer.finish_reason == "length":
            return _fail(self.name, "truncated")
        text = strip_fences(answer.text) if self.allow_fences else answer.text.strip()
        value, problem = parse_json(text)
        if problem is not None:
            return _fail(self.name, problem)
        validator = self._validator(fmt)
        if isinstance(validator, str):
            return _pass(self.name, f"json-ok; request schema unusable: {validator}")
        if validator is None:
            return _pass(self.name, "json-ok")
        error = first_error(validator, value)
        return (
            _pass(self.name, "schema-ok") if error is None else _fail(self.name, f"schema:{error}")
        )


@dataclass(frozen=True, slots=True)
class PatternGate:
    """The answer must contain a match of a configured regex (e.g. a final-answer line)."""

    regex: re.Pattern[str]
    name: str = "pattern"
    needs_logprobs: bool = False
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        if self.regex.search(answer.text):
            return _pass(self.name, "match")
        return _fail(self.name, "no-match")


@dataclass(frozen=True, slots=True)
class AnswerPresentGate:
    """The answer ends by stating a result in the configured form and was not cut off."""

    form: Form
    name: str = "answer_present"
    needs_logprobs: bool = False
    samples: int = 0
    when: re.Pattern[str] | None = None  # judge only prompts that match (e.g. math problems)

    def judge(self, answer: Answer) -> Verdict:
        if self.when is not None and self.when.search(answer.prompt) is None:
            return _pass(self.name, "not-applicable")
        if answer.finish_reason == "length":
            return _fail(self.name, "truncated")
        if not ends_with_answer(answer.text, self.form):
            reason = "truncated" if is_truncated(answer.text) else "no-final-answer"
            return _fail(self.name, reason)
        return _pass(self.name, "answer-present")


@dataclass(frozen=True, slots=True)
class ArithmeticGate:
    """Every computation the answer writes out is right (``max_failures`` slips allowed)."""

    max_failures: int
    name: str = "arithmetic"
    needs_logprobs: bool = False
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        checks = find_checks(answer.text)
        if not checks:
            return _pass(self.name, "no-computations")
        wrong = [c for c in checks if not c.ok]
        score = 1.0 - len(wrong) / len(checks)
        if len(wrong) <= self.max_failures:
            return _pass(self.name, f"{len(checks)}-checked", score)
        first = wrong[0]
        return _fail(self.name, f"{first.expression} != {first.stated_text}", score)


@dataclass(frozen=True, slots=True)
class LogprobGate:
    """Mean and minimum token logprob of the answer above thresholds (confidence)."""

    min_mean: float
    min_token: float | None
    missing_passes: bool
    name: str = "confidence"
    needs_logprobs: bool = True
    samples: int = 0

    def judge(self, answer: Answer) -> Verdict:
        lps = answer.token_logprobs
        if not lps:
            if self.missing_passes:
                return _pass(self.name, "no-logprobs")
            return _fail(self.name, "no-logprobs")
        mean = math.fsum(lps) / len(lps)
        score = math.exp(mean)
        if mean < self.min_mean:
            return _fail(self.name, f"mean-logprob {mean:.2f} < {self.min_mean}", score)
        low = min(lps)
        if self.min_token is not None and low < self.min_token:
            return _fail(self.name, f"token-logprob {low:.2f} < {self.min_token}", score)
        return _pass(self.name, f"mean-logprob {mean:.2f}", score)


def _label_said(text: str, labels: set[str]) -> str | None:
    """The label the answer starts with ("B", "(B)", "B. Paris"), or None ("Answer: B")."""
    head = text.lstrip(" \t\n(*").upper()
    for label in sorted(labels, key=len, reverse=True):
        rest = head[len(label) :]
        if head.startswith(label) and not (rest[:1].isalnum()):
            return label
    return None


@dataclass(frozen=True, slots=True)
class AnswerProbGate:
    """Classification: the probability of the first answer token (over ``labels`` if set)."""

    min_prob: float
    labels: tuple[str, ...] | None
    missing_passes: bool
    name: str = "answer_prob"
    needs_logprobs: bool = True
    samples: int = 0

    def _prob(self, answer: Answer) -> float | None:
        top = answer.first_token_top
        chosen = answer.token_logprobs[0] if answer.token_logprobs else None
        if self.labels and top:
            wanted = {label.strip().upper() for label in self.labels}
            mass: dict[str, float] = {}
            for token, lp in top:
                label = token.strip().upper()
                if label in wanted:
                    mass[label] = mass.get(label, 0.0) + math.exp(lp)
            total = math.fsum(mass.values())
            if total > 0:
                said = _label_said(answer.text, wanted)
                return (mass[said] if said in mass else max(mass.values())) / total
        if chosen is not None:
            return math.exp(chosen)
        if top:
            return math.exp(max(lp for _, lp in top))
        return None

    def judge(self, answer: Answer) -> Verdict:
        prob = self._prob(answer)
        if prob is None:
            return (_pass if self.missing_passes else _fail)(self.name, "no-logprobs")
        if prob < self.min_prob:
            return _fail(self.name, f"answer-prob {prob:.2f} < {self.min_prob}", prob)
        return _pass(self.name, f"answer-prob {prob:.2f}", prob)


@dataclass(frozen=True, slots=True)
class SelfConsistencyGate:
    """Extra samples: the answer's result must be the one most of the answers give."""

    samples: int
    min_agreement: float
    form: Form
    name: str = "self_consistency"
    needs_logprobs: bool = False

    def _result(self, text: str) -> str:
        found = final_answer(text, self.form)
        return found if found is not None else " ".join(text.split()).lower()

    def judge(self, answer: Answer) -> Verdict:
        if not answer.samples:
            return _pass(self.name, "no-samples")
        results = [self._result(t) for t in (answer.text, *answer.samples)]
        mine = results[0]
        agreement = results.count(mine) / len(results)
        top, top_count = Counter(results).most_common(1)[0]
        if agreement < self.min_agreement or (top != mine and top_count > results.count(mine)):
            return _fail(self.name, f"agreement {agreement:.2f}", agreement)
        return _pass(self.name, f"agreement {agreement:.2f}", agreement)


def _build_one(spec: GateSpec, base_dir: Path) -> Gate:
    from gateway.escalation.verifier import LearnedGate, load_model
    from gateway.escalation.verifier_prompt import VerifierModelGate

    match spec:
        case SchemaGateSpec():
            fixed = compile_schema(spec.json_schema) if spec.json_schema is not None else None
            return SchemaGate(fixed, spec.allow_fences)
        case PatternGateSpec():
            flags = re.IGNORECASE if spec.ignore_case else 0
            return PatternGate(re.compile(spec.regex, flags))
        case AnswerPresentGateSpec():
            when = re.compile(spec.when_prompt_matches) if spec.when_prompt_matches else None
            return AnswerPresentGate(spec.form, name=spec.kind, when=when)
        case ArithmeticGateSpec():
            return ArithmeticGate(spec.max_failures)
        case LogprobGateSpec():
            return LogprobGate(spec.min_mean, spec.min_token, spec.missing == "pass")
        case AnswerProbGateSpec():
            return AnswerProbGate(spec.min_prob, spec.labels, spec.missing == "pass")
        case SelfConsistencyGateSpec():
            return SelfConsistencyGate(spec.samples, spec.min_agreement, spec.form)
        case LearnedGateSpec():
            model = load_model(base_dir / spec.artifact)
            when = re.compile(spec.when_prompt_matches) if spec.when_prompt_matches else None
            return LearnedGate(model, model.threshold_for(spec.escalate_share), when)
        case VerifierGateSpec():
            return VerifierModelGate(spec.alias, spec.min_yes)
    raise TypeError(f"unknown gate spec {spec!r}")  # pragma: no cover - the union is closed


def build_gates(specs: Sequence[GateSpec], base_dir: Path) -> tuple[Gate, ...]:
    """Ready gates for an alias, in the listed order (raises ValueError for a bad artifact)."""
    return tuple(_build_one(spec, base_dir) for spec in specs)
