"""The gate specs of an alias's ``escalation.gates`` list: one pydantic model per ``kind``.

Use ``GateSpec`` (the discriminated union) wherever rules are validated; ``build_gates`` in
``gates.py`` turns a list of them into ready gates. Specs are frozen and forbid unknown keys, so a
typo in the rules stops the process at start with a dotted path, never at request time. Regexes
and schemas are checked here, at load, for the same reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.escalation.answer_forms import Form


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
    return value


class SchemaGateSpec(_Spec):
    """The answer is JSON; valid against the request's ``json_schema`` (or ``schema`` here)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True)

    kind: Literal["schema"]
    # A schema to apply to every answer of the alias, whatever the request says (optional).
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    # Without a JSON response_format (and no schema above), the gate passes: plain text is fine.
    allow_fences: bool = False  # accept ```json ... ``` around the object (clients may not)

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from gateway.escalation.json_checks import check_schema

            check_schema(value)
        return value


class PatternGateSpec(_Spec):
    """The answer matches ``regex`` (``re.search``; anchor it yourself), e.g. ``#### -?\\d+``."""

    kind: Literal["pattern"]
    regex: str
    ignore_case: bool = False

    _valid = field_validator("regex")(_check_regex)


class AnswerPresentGateSpec(_Spec):
    """The answer ends by stating a result in ``form`` (and was not cut off by max_tokens)."""

    kind: Literal["answer_present", "final_answer"]
    form: Form = "auto"
    # Judge only prompts matching this regex (a general-purpose alias: only its math problems).
    when_prompt_matches: str | None = None

    _valid = field_validator("when_prompt_matches")(_check_regex)


class ArithmeticGateSpec(_Spec):
    """Written computations (``a op b = c``, ``<<a*b=c>>``) are right; ``max_failures`` allowed."""

    kind: Literal["arithmetic"]
    max_failures: Annotated[int, Field(ge=0)] = 0


class LogprobGateSpec(_Spec):
    """Token logprobs: the mean is at least ``min_mean`` and no token is below ``min_token``."""

    kind: Literal["logprob"]
    min_mean: Annotated[float, Field(le=0)] = -0.5
    min_token: Annotated[float, Field(le=0)] | None = None
    missing: Literal["pass", "fail"] = "pass"  # when the provider returned no logprobs


class AnswerProbGateSpec(_Spec):
    """Classification: the first answer token's probability is at least ``min_prob``. With
    ``labels``, the probability is renormalised over those labels' tokens (the margin)."""

    kind: Literal["answer_prob"]
    min_prob: Annotated[float, Field(gt=0, lt=1)] = 0.7
    labels: tuple[str, ...] | None = None
    missing: Literal["pass", "fail"] = "pass"


class SelfConsistencyGateSpec(_Spec):
    """``samples`` extra answers; at least ``min_agreement`` of all answers give the same result."""

    kind: Literal["self_consistency"]
    samples: Annotated[int, Field(ge=1, le=10)] = 3
    min_agreement: Annotated[float, Field(gt=0, le=1)] = 0.6
    form: Form = "auto"


class LearnedGateSpec(_Spec):
    """A small trained model scores how likely the answer is wrong; about ``escalate_share`` of
    answers like the training data's fail (the threshold is calibrated from that data)."""

    kind: Literal["learned"]
    artifact: str  # gate.json or its directory, relative to the rules file's directory
    escalate_share: Annotated[float, Field(ge=0, le=1)] = 0.3
    # Judge only prompts matching this regex (e.g. math word problems); others pass.
    when_prompt_matches: str | None = None

    _valid = field_validator("when_prompt_matches")(_check_regex)


class VerifierGateSpec(_Spec):
    """A verifier model (an alias) reads the question and the answer and says yes or no. The
    escalation stage makes that call; ``verifier_prompt.py`` builds and parses it."""

    kind: Literal["verifier"]
    alias: str
    min_yes: Annotated[float, Field(gt=0, le=1)] = 0.5  # with logprobs: P(yes) needed


GateSpec = Annotated[
    SchemaGateSpec
    | PatternGateSpec
    | AnswerPresentGateSpec
    | ArithmeticGateSpec
    | LogprobGateSpec
    | AnswerProbGateSpec
    | SelfConsistencyGateSpec
    | LearnedGateSpec
    | VerifierGateSpec,
    Field(discriminator="kind"),
]
