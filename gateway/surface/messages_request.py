"""Anthropic's Messages request (``POST /v1/messages``) read and turned into chat messages.

Policy: text, images (base64 or URL), system prompts, tools with ``input_schema``, tool use and
tool results, ``tool_choice`` (auto, any, tool, none), stop sequences and sampling are translated;
Anthropic's server tools (web search, code execution, ...) have no chat equivalent and are
refused with a 400 naming the field. Thinking blocks in earlier turns are dropped (a chat model
cannot take them back in); ``top_k`` is dropped (chat completions have none).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidRequest

ChatMessage = dict[str, Any]


class MessagesRequest(BaseModel):
    """``POST /v1/messages``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    max_tokens: Annotated[int, Field(ge=1)]
    messages: Annotated[list[dict[str, Any]], Field(min_length=1)]
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def _text_of(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, list):
        return "".join(
            str(b.get("text") or "")
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = str(source.get("url"))
    else:
        raise InvalidRequest("Only base64 and url image sources are supported.", param=where)
    return {"type": "image_url", "image_url": {"url": url}}


def _user(content: Any, where: str) -> list[ChatMessage]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[ChatMessage] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content or ()):
        kind = block.get("type")
        if kind == "tool_result":
            result = block.get("content")
            text = _text_of(result)
            if block.get("is_error"):
                text = "Error: " + text
            messages.append(
                {"role": "tool", "tool_call_id": str(block.get("tool_use_id")), "content": text}
            )
        elif kind == "text":
            parts.append({"type": "text", "text": str(block.get("text") or "")})
        elif kind == "image":
            parts.append(_image(block, f"{where}[{i}]"))
        else:
            raise InvalidRequest(f"Content blocks of type '{kind}' are not supported.", param=where)
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        body = "".join(p["text"] for p in parts) if only_text else parts
        messages.append({"role": "user", "content": body})
    return messages


def _assistant(content: Any, where: str) -> ChatMessage:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": str(block.get("name")), "arguments": arguments}
            calls.append({"id": str(block.get("id")), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequest(f"Content blocks of type '{kind}' are not supported.", param=where)
    message: ChatMessage = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def chat_messages(request: MessagesRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if request.system:
        messages.append({"role": "system", "content": _text_of(request.system)})
    for i, message in enumerate(request.messages):
        where = f"messages[{i}].content"
        role = message.get("role")
        if role == "user":
            messages.extend(_user(message.get("content"), where))
        elif role == "assistant":
            messages.append(_assistant(message.get("content"), where))
        else:
            raise InvalidRequest(f"Unknown role '{role}'.", param=f"messages[{i}].role")
    return messages


def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        if "input_schema" not in tool or tool.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"Server tools ('{tool.get('type')}') are not supported; only custom tools.",
                param=f"tools[{i}]",
            )
        function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise InvalidRequest(f"Unknown tool_choice type '{kind}'.", param="tool_choice.type")


def chat_body(request: MessagesRequest, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request),
        "max_tokens": request.max_tokens,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    tools = chat_tools(request.tools)
    optional: dict[str, Any] = {
        "stop": request.stop_sequences or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tools": tools,
        "tool_choice": chat_tool_choice(request.tool_choice) if tools else None,
        "user": (request.metadata or {}).get("user_id"),
    }
    if tools and (request.tool_choice or {}).get("disable_parallel_tool_use"):
        optional["parallel_tool_calls"] = False
    body.update((k, v) for k, v in optional.items() if v is not None)
    return body
