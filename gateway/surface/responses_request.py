"""The Responses API request (``POST /v1/responses``) read and turned into chat messages.

Policy: everything that has a chat equivalent is translated (instructions, text and image input,
function tools and tool choice, function calls and their outputs, ``text.format`` structured
output, sampling and output caps); what has none (built-in tools such as web search, file
inputs, item references) is refused with a 400 naming the field, never silently dropped.
``developer`` messages become ``system`` messages, which every OpenAI-compatible server knows.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidRequest

ChatMessage = dict[str, Any]


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``. Unknown fields are accepted and ignored (``include``, ...)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: Annotated[str, Field(max_length=128)] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None


def _part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image" and part.get("image_url"):
        image = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(f"Content of type '{kind}' is not supported here.", param=where)


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("Message content must be a string or a list of parts.", param=where)
    parts = [_part(p, where) for p in content if isinstance(p, dict)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def input_messages(items: str | list[dict[str, Any]] | None) -> list[ChatMessage]:
    """Responses input items as chat messages (function calls grouped into one assistant turn)."""
    if items is None:
        return []
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[ChatMessage] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"Unknown role '{role}'.", param=where + ".role")
            messages.append(
                {
                    "role": "system" if role == "developer" else role,
                    "content": _content(item.get("content"), where + ".content"),
                }
            )
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or ""),
                "type": "function",
                "function": {
                    "name": str(item.get("name") or ""),
                    "arguments": str(item.get("arguments") or ""),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _content(output, where + ".output")
            messages.append(
                {"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text}
            )
        elif kind == "reasoning":
            continue  # nothing a chat model can take back in
        else:
            raise InvalidRequest(f"Input items of type '{kind}' are not supported.", param=where)
    return messages


def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise InvalidRequest(
                f"Only function tools are supported, not '{tool.get('type')}'.",
                param=f"tools[{i}].type",
            )
        function: dict[str, Any] = {"name": tool.get("name")}
        for field in ("description", "parameters", "strict"):
            if tool.get(field) is not None:
                function[field] = tool[field]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise InvalidRequest("Only function tool choices are supported.", param="tool_choice")


def response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name") or "response"}
        for field in ("schema", "strict", "description"):
            if fmt.get(field) is not None:
                schema[field] = fmt[field]
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(f"Unknown text format '{fmt['type']}'.", param="text.format.type")


def chat_body(
    request: ResponsesRequest, history: list[ChatMessage], stream: bool
) -> tuple[dict[str, Any], list[ChatMessage]]:
    """The chat request body, and the conversation (without instructions) to store."""
    conversation = history + input_messages(request.input)
    if not conversation:
        raise InvalidRequest("input is required.", param="input")
    messages = list(conversation)
    if request.instructions:
        messages.insert(0, {"role": "system", "content": request.instructions})
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    optional = {
        "tools": chat_tools(request.tools),
        "tool_choice": chat_tool_choice(request.tool_choice),
        "parallel_tool_calls": request.parallel_tool_calls,
        "response_format": response_format(request.text),
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if "tools" not in body:
        body.pop("tool_choice", None)
        body.pop("parallel_tool_calls", None)
    return body, conversation
