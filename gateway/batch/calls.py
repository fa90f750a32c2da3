"""One batched call to the gateway (or any OpenAI-compatible API) with the official SDK.

Use ``send(client, request)``: it paces the call, sends it with its Idempotency-Key, retries
429 / 5xx / 409 (idempotent twin still running) / connection errors with full-jitter backoff,
and returns what came back: the content, usage, provenance headers, or the error that ended it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import openai

from gateway.batch.pacing import BACKOFF_S, Booking, Pacer, backoff_s

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Request:
    alias: str
    prompt: str
    max_tokens: int
    temperature: float
    idempotency_key: str
    estimate_tokens: float


@dataclass(frozen=True, slots=True)
class Answer:
    content: str | None
    prompt_tokens: int
    completion_tokens: int
    headers: Mapping[str, str]
    model: str | None
    replayed: bool
    error: str | None = None  # set when the call failed for good

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def estimate_prompt_tokens(prompt: str) -> float:
    """Characters / 4 and a few for the message frame: close for English text and the sim."""
    return len(prompt) / 4.0 + 8.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                continue
    return None


async def _paced(pacer: Pacer, tokens: float) -> Booking:
    """Wait as the pacer says, then book the call; returns when it was booked."""
    await asyncio.sleep(pacer.wait_s(time.monotonic(), tokens))
    # The ceiling check right before sending: other calls may have booked while we slept.
    wait = pacer.wait_s(time.monotonic(), tokens, graduated=False)
    while wait > 0:
        await asyncio.sleep(wait)
        wait = pacer.wait_s(time.monotonic(), tokens, graduated=False)
    return pacer.sent(time.monotonic(), tokens)


async def send(
    client: openai.AsyncOpenAI, request: Request, pacer: Pacer, rng: random.Random
) -> Answer:
    """The call, paced and retried (see the module docstring)."""
    est = request.estimate_tokens
    last_error = "no attempt"
    for attempt in range(len(BACKOFF_S) + 1):
        booked = await _paced(pacer, est)
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=request.alias,
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                extra_headers={"Idempotency-Key": request.idempotency_key},
            )
        except openai.APIStatusError as exc:
            pacer.refund(booked)
            headers = {k.lower(): v for k, v in exc.response.headers.items()}
            limited = exc.status_code == 429
            pacer.adapt(time.monotonic(), limited=limited)
            last_error = f"{exc.status_code}: {exc.message}"[:300]
            if exc.status_code not in RETRY_STATUSES or attempt == len(BACKOFF_S):
                return Answer(None, 0, 0, headers, None, False, error=last_error)
            await asyncio.sleep(backoff_s(attempt, _retry_after(headers), rng))
            continue
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            pacer.refund(booked)
            last_error = f"connection: {exc}"[:300]
            await asyncio.sleep(backoff_s(attempt, None, rng))
            continue
        headers = {k.lower(): v for k, v in raw.headers.items()}
        completion = raw.parse()
        usage = completion.usage
        replayed = headers.get("x-tiergate-idempotent-replay") == "true"
        prompt_t = usage.prompt_tokens if usage else 0
        completion_t = usage.completion_tokens if usage else 0
        now = time.monotonic()
        # A replayed answer was paid for before: nothing new counts against the limit.
        pacer.settle(booked, 0.0 if replayed else prompt_t + completion_t)
        pacer.observe(now, headers)
        pacer.adapt(now, limited=False)
        content = completion.choices[0].message.content if completion.choices else None
        return Answer(content, prompt_t, completion_t, headers, completion.model, replayed)
    return Answer(None, 0, 0, {}, None, False, error=last_error)
