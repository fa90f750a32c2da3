"""Building Responses API objects (response, output items, usage) from chat answers.

Use ``ResponseShape`` once per request: it carries the request's echoed fields and the ids, and
builds the ``response`` object in any status, so the JSON answer, every stream event and the
stored copy agree field for field.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from gateway.surface.chat_reading import Completion, Usage
from gateway.surface.responses_request import ResponsesRequest

Item = dict[str, Any]


def new_id(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> Item:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def function_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def output_items(completion: Completion) -> list[Item]:
    items: list[Item] = []
    if completion.text:
        items.append(message_item(new_id("msg_"), completion.text))
    for call in completion.tool_calls:
        items.append(function_item(new_id("fc_"), call.id, call.name, call.arguments))
    if not items:
        items.append(message_item(new_id("msg_"), ""))
    return items


def assistant_message(items: list[Item]) -> dict[str, Any]:
    """The answer as one chat message, for the stored conversation."""
    text = "".join(
        part["text"]
        for item in items
        if item["type"] == "message"
        for part in item["content"]
        if part.get("type") == "output_text"
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in items
        if item["type"] == "function_call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


@dataclass(frozen=True, slots=True)
class ResponseShape:
    """The fields of one response that do not depend on the answer."""

    id: str
    created_at: int
    request: ResponsesRequest
    store: bool

    @classmethod
    def start(cls, request: ResponsesRequest, store: bool) -> ResponseShape:
        return cls(new_id("resp_"), int(time.time()), request, store)

    def object(
        self,
        status: str,
        model: str,
        output: list[Item],
        usage: Usage | None = None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        r = self.request
        incomplete = None
        if status == "incomplete":
            reason = "content_filter" if finish_reason == "content_filter" else "max_output_tokens"
            incomplete = {"reason": reason}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": r.instructions,
            "max_output_tokens": r.max_output_tokens,
            "model": model or r.model,
            "output": output,
            "parallel_tool_calls": True if r.parallel_tool_calls is None else r.parallel_tool_calls,
            "previous_response_id": r.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": self.store,
            "temperature": 1.0 if r.temperature is None else r.temperature,
            "text": r.text or {"format": {"type": "text"}},
            "tool_choice": r.tool_choice or "auto",
            "tools": r.tools or [],
            "top_p": 1.0 if r.top_p is None else r.top_p,
            "truncation": "disabled",
            "usage": None if usage is None else usage_object(usage),
            "user": r.user,
            "metadata": r.metadata or {},
        }


def status_of(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in ("length", "content_filter") else "completed"


def input_items(conversation: list[dict[str, Any]]) -> list[Item]:
    """A stored conversation (chat messages, the answer excluded) as Responses input items,
    for ``GET /v1/responses/{id}/input_items``. Ids are made up: inputs had none."""
    items: list[Item] = []
    for message in conversation:
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            items.append(
                {
                    "id": new_id("fco_"),
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": content if isinstance(content, str) else str(content),
                    "status": "completed",
                }
            )
            continue
        kind = "output_text" if role == "assistant" else "input_text"
        parts: list[dict[str, Any]] = []
        if isinstance(content, str) and content:
            parts.append({"type": kind, "text": content})
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    parts.append({"type": kind, "text": part.get("text", "")})
                elif part.get("type") == "image_url":
                    url = (part.get("image_url") or {}).get("url")
                    parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
        if parts:
            items.append(
                {
                    "id": new_id("msg_"),
                    "type": "message",
                    "role": role,
                    "status": "completed",
                    "content": parts,
                }
            )
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                function_item(
                    new_id("fc_"),
                    call.get("id", ""),
                    function.get("name", ""),
                    function.get("arguments", ""),
                )
            )
    return items
