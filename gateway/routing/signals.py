"""Request signals for the ``rules`` router: computed once per call, in microseconds.

Policy: each signal is a cheap, explainable property of the request that predicts it needs a
stronger model (long prompts, deep conversations, code, math, tools, a JSON schema to fill).
Points per signal come from the rules; the call starts on the strongest tier when its points
reach ``strong_points``. Signals read only the request (messages, tools, response format), never
any label, so the same function scores live calls and evaluation prompts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.requests import ChatRequest, Message
from gateway.rules import RulesSignals

CHARS_PER_TOKEN = 4  # an estimate: the signal needs an order of magnitude, not a tokenizer

_CODE = re.compile(
    r"```|^\s*(?:def |class |import |from \S+ import |#include|public static|function\s*\(|"
    r"SELECT\s.+\sFROM\s)|[{};]\s*$|=>|\breturn\b.*;",
    re.MULTILINE | re.IGNORECASE,
)
_MATH = re.compile(
    r"\\(?:frac|sum|int|sqrt|begin\{)|\$[^$\n]+\$|\b\d+\s*[-+*/^=<>]\s*\(?\d|"
    r"\b(?:prove|derivative|integral|equation|theorem|probability|solve for|polynomial|"
    r"matrix|modulo|factorial)\b",
    re.IGNORECASE,
)


def text_of(message: Message) -> str:
    """The text parts of a message (images and other parts are ignored)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(part.get("text", "")) for part in content if part.get("type") in ("text", "input_text")
    )


def last_user_text(messages: Sequence[Message]) -> str:
    """What the router scores: the last user message (the question being asked now)."""
    for message in reversed(messages):
        if message.role == "user":
            return text_of(message)
    return text_of(messages[-1]) if messages else ""


@dataclass(frozen=True, slots=True)
class Signals:
    prompt_tokens: int
    user_turns: int
    code: bool
    math: bool
    tools: bool
    json_schema: bool

    def fired(self, policy: RulesSignals) -> list[str]:
        """The signals that count for ``policy``, by name."""
        out = []
        if self.prompt_tokens >= policy.long_prompt_tokens:
            out.append("long_prompt")
        if self.user_turns >= policy.deep_conversation_turns:
            out.append("deep_conversation")
        for name in ("code", "math", "tools", "json_schema"):
            if getattr(self, name):
                out.append(name)
        return out

    def points(self, policy: RulesSignals) -> float:
        return sum(policy.points.get(name, 0.0) for name in self.fired(policy))  # type: ignore[call-overload]


def wants_schema(response_format: dict[str, Any] | None) -> bool:
    return bool(response_format) and response_format.get("type") == "json_schema"  # type: ignore[union-attr]


def signals_of(request: ChatRequest) -> Signals:
    chars = 0
    turns = 0
    for message in request.messages:
        chars += len(text_of(message))
        turns += message.role == "user"
    last = last_user_text(request.messages)
    return Signals(
        prompt_tokens=chars // CHARS_PER_TOKEN,
        user_turns=turns,
        code=_CODE.search(last) is not None,
        math=_MATH.search(last) is not None,
        tools=bool(request.tools),
        json_schema=wants_schema(request.response_format),
    )
