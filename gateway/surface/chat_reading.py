"""Reading the pipeline's chat answers: one ``chat.completion`` body or ``chat.completion.chunk``s.

Use ``read_completion`` on a whole answer and ``read_chunk`` on each streamed chunk; every
surface renders from these two typed views, so none of them parses chat JSON on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import ProviderBadResponse


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """The first choice of a whole chat answer."""

    id: str
    created: int
    model: str
    text: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage


@dataclass(frozen=True, slots=True)
class ToolDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one streamed chunk adds (first choice only)."""

    model: str
    text: str | None = None
    tools: tuple[ToolDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        int(raw.get("prompt_tokens") or 0),
        int(raw.get("completion_tokens") or 0),
        int(cached or 0),
    )


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderBadResponse("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderBadResponse("the answer is not a JSON object")
    return data


def read_completion(raw: bytes) -> Completion:
    data = _json(raw)
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    calls = tuple(
        ToolCall(
            str(c.get("id") or ""),
            str((c.get("function") or {}).get("name") or ""),
            str((c.get("function") or {}).get("arguments") or ""),
        )
        for c in message.get("tool_calls") or ()
        if isinstance(c, dict)
    )
    content = message.get("content")
    return Completion(
        id=str(data.get("id") or ""),
        created=int(data.get("created") or 0),
        model=str(data.get("model") or ""),
        text=content if isinstance(content, str) else None,
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=_usage(data.get("usage")) or Usage(),
    )


def read_chunk(raw: bytes) -> Chunk:
    data = _json(raw)
    model = str(data.get("model") or "")
    usage = _usage(data.get("usage")) if data.get("usage") else None
    choices = data.get("choices")
    if not choices or not isinstance(choices[0], dict):
        return Chunk(model, usage=usage)
    choice = choices[0]
    delta = choice.get("delta") or {}
    tools = tuple(
        ToolDelta(
            int(t.get("index") or 0),
            t.get("id"),
            (t.get("function") or {}).get("name"),
            str((t.get("function") or {}).get("arguments") or ""),
        )
        for t in delta.get("tool_calls") or ()
        if isinstance(t, dict)
    )
    content = delta.get("content")
    return Chunk(
        model,
        text=content if isinstance(content, str) and content else None,
        tools=tools,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
    )
