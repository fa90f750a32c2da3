"""The drill's load driver: open-loop traffic through the official ``openai`` client.

Open loop: request ``i`` is due at ``t0 + i / rate`` whatever the gateway does, and its latency is
measured from that scheduled time, so a gateway that stalls cannot hide the queue it builds
(coordinated omission). In-flight requests are bounded; a request due while the bound is reached
is not sent and is counted (``not_sent``), never queued: a queue would turn the open loop into a
closed one. A request sent more than ``LATE_S`` after its time is counted as ``late`` (the driver
itself fell behind; the report says so instead of blaming the gateway).

Each answer is read raw (``with_streaming_response``): status, the ``x-tiergate-*`` headers,
``Retry-After``, and for streams how the stream ended: ``done`` ([DONE] after a finish reason),
``error`` (an SSE error event: the gateway said the answer is incomplete), or ``truncated`` (it
just stopped, or said [DONE] without a finish reason: an incomplete answer presented as complete).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson

LATE_S = 0.05
MAX_IN_FLIGHT = 1000
# httpx's pool scans every connection for every request: with hundreds in flight (a hanging
# target) one client's pool costs the driver more than the gateway. Requests go round-robin over
# this many clients, each with its own pool.
CLIENT_SHARDS = 16
CLIENT_GRACE_S = 2.0  # the client waits this long past the deadline before giving up


@dataclass(slots=True)
class Outcome:
    """One request as the client saw it. Times in seconds; ``*_s`` since the run's t0."""

    index: int
    scheduled_s: float
    lag_s: float  # sent this long after its scheduled time
    latency_s: float = 0.0  # scheduled time -> end of the answer
    service_s: float = 0.0  # sent -> end of the answer
    status: int = 0  # 0: no HTTP answer (connection error, client timeout)
    target: str | None = None
    model: str | None = None
    attempts: int | None = None
    retry_after: str | None = None
    cache: str | None = None
    timed_out: bool = False  # the client gave up waiting
    stream_end: str | None = None  # streams: done | error | truncated
    ttft_s: float | None = None  # streams: sent -> first content chunk
    body_ok: bool = True  # JSON answers: a chat completion with choices
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A complete answer: a 200 chat completion, or a stream with [DONE] after a finish
        reason."""
        return self.status == 200 and self.body_ok and self.stream_end in (None, "done")

    @property
    def end_s(self) -> float:
        return self.scheduled_s + self.latency_s


@dataclass(slots=True)
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    not_sent: int = 0
    late: int = 0


def _headers_into(outcome: Outcome, headers: Any) -> None:
    outcome.target = headers.get("x-tiergate-target")
    outcome.model = headers.get("x-tiergate-model")
    attempts = headers.get("x-tiergate-attempts")
    outcome.attempts = int(attempts) if attempts and attempts.isdigit() else None
    outcome.retry_after = headers.get("retry-after")
    outcome.cache = headers.get("x-tiergate-cache")


def _is_completion(body: bytes) -> bool:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and bool(parsed.get("choices"))


# Byte-level checks on each SSE event (a stream has dozens; parsing every one as JSON would
# cost the driver more than the gateway spends on it). Finish reasons are strings; null is not.
ERROR_EVENT = re.compile(rb'^\{\s*"error"\s*:')
FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')


def _has_content(data: bytes) -> bool:
    """A chat chunk carrying content or a tool call (parsed: only until the first one)."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    choices = event.get("choices") if isinstance(event, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


@contextlib.asynccontextmanager
async def openai_clients(
    base_url: str, api_key: str, shards: int = CLIENT_SHARDS
) -> AsyncIterator[list[openai.AsyncOpenAI]]:
    """Clients for a driver (closed on exit). No SDK retries: the drill measures the gateway.
    One TLS context for all of them (each would load the CA bundle, ~50 ms apiece)."""
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                openai.AsyncOpenAI(
                    base_url=base_url,
                    api_key=api_key,
                    max_retries=0,
                    http_client=openai.DefaultAsyncHttpxClient(verify=tls),
                )
            )
            for _ in range(shards)
        ]
        yield clients


class Driver:
    """Sends chat requests for one alias; ``run`` drives them open loop until ``stop`` is set."""

    def __init__(
        self,
        clients: Sequence[openai.AsyncOpenAI],
        model: str,
        *,
        stream: bool,
        deadline_s: float,
        tag: str,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._clients = clients
        self._model = model
        self._stream = stream
        self._give_up_s = deadline_s + CLIENT_GRACE_S
        self._tag = tag
        self._max_in_flight = max_in_flight
        self.load = Load()

    async def run(self, rate: float, stop: asyncio.Event, t0: float) -> Load:
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        in_flight: set[asyncio.Task[Outcome]] = set()
        i = 0
        while not stop.is_set():
            due = t0 + i * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                if stop.is_set():
                    break
            if len(in_flight) >= self._max_in_flight:
                self.load.not_sent += 1
            else:
                task = asyncio.create_task(self.send(i, due, t0))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            i += 1
        if in_flight:
            await asyncio.gather(*in_flight)
        return self.load

    async def send(self, index: int, due: float, t0: float) -> Outcome:
        """One request due at ``due`` (loop time); recorded in ``load`` and returned."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        outcome = Outcome(index=index, scheduled_s=due - t0, lag_s=max(0.0, sent - due))
        if outcome.lag_s > LATE_S:
            self.load.late += 1
        try:
            async with asyncio.timeout(self._give_up_s):
                await self._exchange(outcome, index, sent)
        except TimeoutError:
            outcome.timed_out = True
            outcome.error = f"no answer within {self._give_up_s:g} s"
            if outcome.stream_end is not None:
                outcome.stream_end = "truncated"
        except openai.APIStatusError as exc:
            outcome.status = exc.status_code
            _headers_into(outcome, exc.response.headers)
            outcome.error = f"HTTP {exc.status_code}"
        except openai.APIConnectionError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        end = loop.time()
        outcome.latency_s = end - due
        outcome.service_s = end - sent
        self.load.outcomes.append(outcome)
        return outcome

    async def _exchange(self, outcome: Outcome, index: int, sent: float) -> None:
        # A fresh prompt per request: no cache may answer for a target (upstream calls per
        # request would not mean anything then); no temperature: the default policy of the
        # exact cache does not store sampled answers either.
        messages: Any = [{"role": "user", "content": f"drill {self._tag} request {index}"}]
        request_id = {"x-request-id": f"drill-{self._tag}-{index}"}
        client = self._clients[index % len(self._clients)]
        async with client.chat.completions.with_streaming_response.create(
            model=self._model,
            messages=messages,
            stream=self._stream,
            extra_headers=request_id,
        ) as response:
            outcome.status = response.status_code
            _headers_into(outcome, response.headers)
            if not self._stream:
                outcome.body_ok = _is_completion(await response.read())
                if not outcome.body_ok:
                    outcome.error = "200 without a chat completion body"
                return
            outcome.stream_end = "truncated"  # until the stream says otherwise
            try:
                await self._read_stream(response, outcome, sent)
            except Exception as exc:  # the connection broke mid-stream (httpx's errors)
                outcome.error = f"stream broke: {type(exc).__name__}"

    @staticmethod
    async def _read_stream(response: Any, outcome: Outcome, sent: float) -> None:
        loop = asyncio.get_running_loop()
        finished = done = errored = False
        rest = b""
        async for block in response.iter_bytes():
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                elif ERROR_EVENT.match(data):
                    errored = True
                elif outcome.ttft_s is None and _has_content(data):
                    outcome.ttft_s = loop.time() - sent
                if not finished and FINISHED.search(data):
                    finished = True
        if errored:
            outcome.stream_end = "error"
        elif done and finished:
            outcome.stream_end = "done"
        else:
            outcome.stream_end = "truncated"
