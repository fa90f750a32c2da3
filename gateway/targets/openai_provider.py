"""Provider for any OpenAI-compatible upstream (OpenAI, Azure OpenAI, vLLM, Ollama, Groq, ...).

This is the hot path, so it does the least it can: the request body is encoded once with orjson,
sent through the pooled ``UpstreamPool``, and the answer's JSON objects are relayed as the
upstream's own bytes. It parses only what the gateway needs: the usage object (tokens are money)
and, for streams, the SSE framing. Streams always ask the upstream for the final usage chunk and
drop it again when the client did not ask for it.

A stream that ends without ``[DONE]`` is an error, never a silently truncated answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import orjson

from gateway.calls import Call, CallKind, Reply, ReplyStats
from gateway.errors import ProviderBadResponse, ProviderTimeout, ProviderUnavailable
from gateway.requests import ChatRequest
from gateway.rules import Target
from gateway.targets.classify import classify, upstream_message
from gateway.targets.upstream import (
    ConnectError,
    Origin,
    ProtocolError,
    ReadTimeout,
    Response,
    UpstreamError,
    UpstreamPool,
)

DONE = b"[DONE]"


RATE_LIMIT_HEADERS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "retry-after",
)


def rate_limit_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The upstream's own rate-limit state, for the target's throttle to tighten from."""
    if "x-ratelimit-remaining-requests" not in headers and "retry-after" not in headers:
        return ()
    return tuple((name, headers[name]) for name in RATE_LIMIT_HEADERS if name in headers)


def encode_body(call: Call, model: str) -> bytes:
    """The upstream request body: the client's fields with the target's model name."""
    body: dict[str, Any] = call.request.model_dump(exclude_unset=True)
    body["model"] = model
    if isinstance(call.request, ChatRequest) and call.request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
    return orjson.dumps(body)


def record_usage(stats: ReplyStats, usage: Any) -> None:
    if isinstance(usage, dict):
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        stats.prompt_tokens = prompt if isinstance(prompt, int) else 0
        stats.completion_tokens = completion if isinstance(completion, int) else 0


class OpenAIProvider:
    """The terminal of one target's stack: one upstream call per invocation."""

    name = "provider"

    def __init__(
        self,
        target_name: str,
        target: Target,
        pool: UpstreamPool,
        api_key: str | None,
        trace_headers: Callable[[], tuple[tuple[str, str], ...]] | None = None,
    ):
        self._target_name = target_name
        # Only when tracing is on: the attempt span's traceparent, sent upstream.
        self._trace_headers = trace_headers
        self._model = target.model
        self._pool = pool
        self._origin = replace(Origin.parse(target.api_base), partition=target_name)
        # Azure OpenAI: the deployment is in api_base, the version in the query string.
        query = f"?api-version={quote(target.api_version)}" if target.api_version else ""
        self._paths = {
            CallKind.CHAT: self._origin.base_path + "/chat/completions" + query,
            CallKind.EMBEDDINGS: self._origin.base_path + "/embeddings" + query,
        }
        headers = [("content-type", "application/json"), ("accept", "application/json")]
        auth = target.auth_header or ("api-key" if target.provider == "azure" else "authorization")
        if api_key:
            headers.append((auth, api_key if auth == "api-key" else f"Bearer {api_key}"))
        headers.extend(target.headers.items())
        self._headers = tuple(headers)
        self._connect_timeout_s = target.timeouts.connect_s
        self._read_timeout_s = target.timeouts.total_s

    async def __call__(self, call: Call) -> Reply:
        body = encode_body(call, self._model)
        started = time.perf_counter()
        headers = self._headers
        if self._trace_headers is not None:
            headers = headers + self._trace_headers()
        try:
            response = await self._pool.request(
                self._origin,
                "POST",
                self._paths[call.kind],
                headers,
                body,
                connect_timeout_s=self._connect_timeout_s,
                read_timeout_s=self._read_timeout_s,
            )
        except UpstreamError as exc:
            raise self._transport_error(exc) from None
        if response.status >= 400:
            try:
                raw = await response.read()
            except UpstreamError:
                raw = b""
            raise classify(response.status, raw, response.headers, self._target_name)
        stats = ReplyStats(model=self._model)
        limits = rate_limit_headers(response.headers)
        if call.stream:
            chunks = self._events(response, stats, call.wants_usage_chunk, started)
            return Reply(chunks, stats, headers=limits)
        # A whole answer is read and checked here, inside the attempt's deadline.
        return Reply(_one(await self._whole(response, stats, started)), stats, headers=limits)

    def _transport_error(self, exc: UpstreamError) -> ProviderUnavailable | ProviderTimeout:
        where = f"target '{self._target_name}'"
        if isinstance(exc, ReadTimeout):
            return ProviderTimeout(f"{where}: read timed out")
        if isinstance(exc, ConnectError):
            return ProviderUnavailable(f"{where}: cannot connect", detail=f"{where}: {exc}")
        if isinstance(exc, ProtocolError):
            return ProviderUnavailable(f"{where}: broken response", detail=f"{where}: {exc}")
        return ProviderUnavailable(f"{where}: transport error", detail=f"{where}: {exc}")

    async def _whole(self, response: Response, stats: ReplyStats, started: float) -> bytes:
        try:
            raw = await response.read()
        except UpstreamError as exc:
            raise self._transport_error(exc) from None
        stats.upstream_first_s = time.perf_counter() - started
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderBadResponse(
                f"target '{self._target_name}' sent a body that is not JSON"
            ) from None
        if not isinstance(data, dict) or ("choices" not in data and "data" not in data):
            raise ProviderBadResponse(f"target '{self._target_name}' sent an unexpected body")
        record_usage(stats, data.get("usage"))
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = choices[0].get("finish_reason")
            stats.finish_reason = reason if isinstance(reason, str) else None
        served = data.get("model")
        if isinstance(served, str):
            stats.model = served
        return raw

    async def _events(
        self, response: Response, stats: ReplyStats, client_wants_usage: bool, started: float
    ) -> AsyncIterator[bytes]:
        """Relay SSE ``data:`` payloads as they arrive, as the upstream's own bytes."""
        buffer = b""
        held_cr = False  # a piece ended in "\r": its "\n" may open the next piece
        first = True
        try:
            async for received in response.iter_chunks():
                piece = b"\r" + received if held_cr else received
                held_cr = piece.endswith(b"\r")
                if held_cr:
                    piece = piece[:-1]
                if b"\r\n" in piece:
                    piece = piece.replace(b"\r\n", b"\n")
                buffer += piece
                if b"\n\n" not in buffer:
                    continue
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    payload = _data_of(event)
                    if payload is None:
                        continue
                    if payload == DONE:
                        return
                    if first:
                        stats.upstream_first_s = time.perf_counter() - started
                        first = False
                    # Every event is parsed (about 1 us each): a malformed event must fail the
                    # attempt, not reach the client as a corrupt answer.
                    if not self._inspect(payload, stats) and not client_wants_usage:
                        continue
                    yield payload
        except UpstreamError as exc:
            raise self._transport_error(exc) from None
        finally:
            response.close()
        raise ProviderBadResponse(f"target '{self._target_name}' ended the stream without [DONE]")

    def _inspect(self, payload: bytes, stats: ReplyStats) -> bool:
        """Check one event, record usage; raise on an error event. False: a usage-only chunk."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ProviderBadResponse(
                f"target '{self._target_name}' sent a stream event that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise ProviderBadResponse(f"target '{self._target_name}' sent an unexpected event")
        if "error" in data:
            message, _, _ = upstream_message(payload)
            where = f"target '{self._target_name}'"
            raise ProviderUnavailable(
                f"{where} sent an error event.", detail=f"{where} stream error: {message}"
            )
        usage = data.get("usage")
        if usage:
            record_usage(stats, usage)
            served = data.get("model")
            if isinstance(served, str):
                stats.model = served
        choices = data.get("choices")
        if choices and isinstance(choices, list):
            reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
            if isinstance(reason, str):
                stats.finish_reason = reason
            return True
        return not usage


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _data_of(event: bytes) -> bytes | None:
    """The payload of one SSE event (``data:`` lines joined), or None for comments/keep-alives."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].strip()
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None
