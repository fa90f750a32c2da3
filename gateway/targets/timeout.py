"""Timeout: per-target deadlines for the first token and for the whole answer.

The first-token deadline is what lets the fallback chain move on from a hanging provider while
the client still waits for its first byte; the total deadline bounds a stream that stalls later.
Both are absolute (loop time), set when the attempt starts, so a slow trickle cannot extend them.
A non-streaming answer is read whole by the provider before it returns, so for it the total
deadline around the provider call is all there is to enforce.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.calls import Call, Reply
from gateway.errors import ProviderTimeout
from gateway.pipeline import Next


async def _bounded(
    chunks: AsyncIterator[bytes], first_deadline: float, total_deadline: float, what: str
) -> AsyncIterator[bytes]:
    deadline = first_deadline
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderTimeout(f"{what}: no answer before the deadline") from None
            deadline = total_deadline
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class Timeout:
    name = "timeout"

    def __init__(self, target: str, first_token_s: float, total_s: float) -> None:
        self._target = target
        self._first_token_s = min(first_token_s, total_s)
        self._total_s = total_s

    async def __call__(self, call: Call, next_: Next) -> Reply:
        now = asyncio.get_running_loop().time()
        total = now + self._total_s
        first = now + self._first_token_s if call.stream else total
        try:
            async with asyncio.timeout_at(first):
                reply = await next_(call)
        except TimeoutError:
            raise ProviderTimeout(f"target '{self._target}' did not answer in time") from None
        if not call.stream:
            return reply
        return reply.with_chunks(_bounded(reply.chunks, first, total, self._target))
