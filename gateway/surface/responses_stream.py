"""Chat chunks in, Responses API stream events out.

The order is OpenAI's: ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added`` (and ``response.content_part.added`` for text), the deltas
(``response.output_text.delta`` or ``response.function_call_arguments.delta``), their ``.done``
events and ``response.output_item.done``, and last ``response.completed`` (or
``response.incomplete`` when the output cap cut the answer). Every event carries a
``sequence_number``. Text opens a message item; a tool call delta closes it and opens one
``function_call`` item per tool-call index, in the order they arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.surface.base import sse
from gateway.surface.chat_reading import Usage, read_chunk
from gateway.surface.responses_objects import (
    Item,
    ResponseShape,
    function_item,
    message_item,
    new_id,
    status_of,
)

Finished = Callable[[dict[str, Any], list[Item]], Awaitable[None]]


@dataclass(slots=True)
class _Open:
    """An output item being streamed."""

    index: int
    item: Item
    text: list[str] = field(default_factory=list)


class EventWriter:
    """Numbers events and frames them as SSE."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse(kind, data)


async def response_events(
    shape: ResponseShape, chunks: AsyncIterator[bytes], finished: Finished
) -> AsyncIterator[bytes]:
    """The whole event stream of one response. ``finished`` runs (e.g. stores the response)
    before the final event, so a client that saw ``response.completed`` can use its id."""
    emit = EventWriter()
    model = shape.request.model
    yield emit("response.created", response=shape.object("in_progress", model, []))
    yield emit("response.in_progress", response=shape.object("in_progress", model, []))
    output: list[Item] = []
    message: _Open | None = None
    tools: dict[int, _Open] = {}
    finish: str | None = None
    usage = Usage()
    async for raw in chunks:
        chunk = read_chunk(raw)
        model = chunk.model or model
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.finish_reason is not None:
            finish = chunk.finish_reason
        if chunk.text is not None:
            if message is None or message.item["status"] != "in_progress":
                # The first text, or text again after a tool call closed the last message.
                message = _Open(len(output), message_item(new_id("msg_"), "", "in_progress"))
                output.append(message.item)
                for frame in _open_message(emit, message):
                    yield frame
            message.text.append(chunk.text)
            yield emit(
                "response.output_text.delta",
                item_id=message.item["id"],
                output_index=message.index,
                content_index=0,
                delta=chunk.text,
                logprobs=[],
            )
        for delta in chunk.tools:
            if message is not None and message.item["status"] == "in_progress":
                for frame in _close_message(emit, message, output):
                    yield frame
            tool = tools.get(delta.index)
            if tool is None:
                item = function_item(
                    new_id("fc_"), delta.id or "", delta.name or "", "", "in_progress"
                )
                tool = tools[delta.index] = _Open(len(output), item)
                output.append(item)
                yield emit("response.output_item.added", output_index=tool.index, item=dict(item))
            if delta.arguments:
                tool.text.append(delta.arguments)
                yield emit(
                    "response.function_call_arguments.delta",
                    item_id=tool.item["id"],
                    output_index=tool.index,
                    delta=delta.arguments,
                )
    if message is not None and message.item["status"] == "in_progress":
        for frame in _close_message(emit, message, output):
            yield frame
    for tool in tools.values():
        arguments = "".join(tool.text)
        item = {**tool.item, "arguments": arguments, "status": "completed"}
        output[tool.index] = item
        yield emit(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=tool.index,
            name=item["name"],
            arguments=arguments,
        )
        yield emit("response.output_item.done", output_index=tool.index, item=item)
    status = status_of(finish)
    final = shape.object(status, model, output, usage, finish)
    await finished(final, output)
    yield emit(
        "response.completed" if status == "completed" else "response.incomplete", response=final
    )


def _open_message(emit: EventWriter, message: _Open) -> list[bytes]:
    item = message.item
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    return [
        emit("response.output_item.added", output_index=message.index, item=dict(item)),
        emit(
            "response.content_part.added",
            item_id=item["id"],
            output_index=message.index,
            content_index=0,
            part=part,
        ),
    ]


def _close_message(emit: EventWriter, message: _Open, output: list[Item]) -> list[bytes]:
    text = "".join(message.text)
    done = message_item(message.item["id"], text)
    message.item["status"] = "completed"
    output[message.index] = done
    ids = {"item_id": done["id"], "output_index": message.index, "content_index": 0}
    return [
        emit("response.output_text.done", **ids, text=text, logprobs=[]),
        emit("response.content_part.done", **ids, part=done["content"][0]),
        emit("response.output_item.done", output_index=message.index, item=done),
    ]
