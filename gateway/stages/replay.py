"""Turning a stored whole answer into a stream, and a stream back into a whole answer.

The exact cache stores ``chat.completion`` bodies. A streaming request answered from the cache
gets them as ``chat.completion.chunk`` events; a streamed answer is assembled into a body before
it is stored. Assembly covers text content (the common case); a stream with tool-call deltas,
several choices or logprobs is not assembled (and so not stored), rather than stored wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson


def completion_to_chunks(body: bytes, include_usage: bool) -> list[bytes]:
    data: Any = orjson.loads(body)
    base = {
        "id": data.get("id", "chatcmpl-cache"),
        "object": "chat.completion.chunk",
        "created": data.get("created", 0),
        "model": data.get("model", ""),
    }
    chunks: list[bytes] = []
    for choice in data.get("choices", []):
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": message.get("role", "assistant")}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(message["tool_calls"])
            ]
        first = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        last = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append(orjson.dumps({**base, "choices": [first]}))
        chunks.append(orjson.dumps({**base, "choices": [last]}))
    if include_usage and data.get("usage"):
        chunks.append(orjson.dumps({**base, "choices": [], "usage": data["usage"]}))
    return chunks


async def iterate(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


class StreamAssembler:
    """Collects a text stream's chunks; ``body()`` is the equivalent ``chat.completion``."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._meta: dict[str, Any] = {}
        self._finish: str | None = None
        self._usage: Any = None
        self.ok = True

    def add(self, chunk: bytes) -> None:
        if not self.ok:
            return
        try:
            self._add(chunk)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            # An upstream chunk of an unexpected shape: relayed as it is, never stored.
            self.ok = False

    def _add(self, chunk: bytes) -> None:
        data: Any = orjson.loads(chunk)
        if not self._meta:
            self._meta = {k: data.get(k) for k in ("id", "created", "model")}
        if data.get("usage"):
            self._usage = data["usage"]
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            if choice.get("index", 0) != 0 or delta.get("tool_calls") or choice.get("logprobs"):
                self.ok = False
                return
            if delta.get("content"):
                self._parts.append(delta["content"])
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]

    def body(self) -> bytes | None:
        if not self.ok or self._finish is None:
            return None
        message = {"role": "assistant", "content": "".join(self._parts)}
        return orjson.dumps(
            {
                **self._meta,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": self._finish}],
                "usage": self._usage,
            }
        )


def replay(body: bytes, stream: bool, include_usage: bool) -> AsyncIterator[bytes]:
    """A stored whole answer as the reply's chunks: one body, or chunk events when streaming."""
    return iterate(completion_to_chunks(body, include_usage) if stream else [body])


async def relay_then(
    chunks: AsyncIterator[bytes],
    stream: bool,
    on_complete: Callable[[bytes | None], None],
    max_bytes: int | None = None,
) -> AsyncIterator[bytes]:
    """Relay an answer and hand its whole body (assembled when streamed) to ``on_complete``.

    A whole answer is handed over before it is yielded: the edge closes the iterator after the
    first chunk, so nothing after that yield would run. A stream longer than ``max_bytes`` is
    relayed without being assembled (``on_complete`` is not called: too large to keep).
    """
    if not stream:
        async for chunk in chunks:
            on_complete(chunk)
            yield chunk
        return
    assembler: StreamAssembler | None = StreamAssembler()
    size = 0
    async for chunk in chunks:
        if assembler is not None:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                assembler = None  # stop holding it in memory
            else:
                assembler.add(chunk)
        yield chunk
    if assembler is not None:
        on_complete(assembler.body())
