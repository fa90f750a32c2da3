"""Request bodies the gateway accepts, validated at the edge with pydantic.

Fields OpenAI defines are typed so a wrong type is a clear 400 naming the field. Fields we do not
know are kept (``extra="allow"``) and passed to the upstream unchanged, because providers add
parameters faster than gateways do; the cache issue treats unknown fields as part of the key.

Strict where a coercion would change meaning: ``n: "2"``, ``stream: "yes"`` or ``max_tokens:
1.5`` are 400s (the upstream would read them differently than we reserved and cached them), as
are ``stream_options`` without ``stream: true``, a ``tool_choice`` naming a tool the request does
not define, and an empty embeddings input (OpenAI answers all of these with 400 too).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: StrictBool | None = None
    stream_options: dict[str, Any] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[StrictInt, Field(ge=1, le=128)] | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, float] | None = None

    @property
    def output_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @model_validator(mode="after")
    def _consistent(self) -> ChatRequest:
        if self.stream_options is not None and self.stream is not True:
            raise ValueError("stream_options is only allowed when stream is true")
        if self.tool_choice is not None:
            check_tool_choice(self.tool_choice, self.tools)
        return self


TOOL_CHOICE_WORDS = frozenset({"none", "auto", "required"})


def check_tool_choice(choice: str | dict[str, Any], tools: list[dict[str, Any]] | None) -> None:
    """``tool_choice`` must name a mode, or a function among ``tools``."""
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_WORDS:
            raise ValueError(f"tool_choice must be one of {sorted(TOOL_CHOICE_WORDS)}")
        if choice == "required" and not tools:
            raise ValueError("tool_choice 'required' needs tools")
        return
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise ValueError("tool_choice must name a function: {'function': {'name': ...}}")
    names = {
        str(t["function"].get("name")) for t in tools or () if isinstance(t.get("function"), dict)
    }
    if name not in names:
        raise ValueError(f"tool_choice names '{name[:64]}', which is not among tools")


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
        | Annotated[list[StrictInt], Field(min_length=1)]
        | Annotated[
            list[Annotated[list[StrictInt], Field(min_length=1)]],
            Field(min_length=1, max_length=2048),
        ]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[StrictInt, Field(ge=1)] | None = None
    user: str | None = None
