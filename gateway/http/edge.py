"""The HTTP edge of the hot routes: HTTP <-> Call/Reply, as a raw ASGI app.

``POST /v1/chat/completions`` and ``POST /v1/embeddings`` are served here directly; every other
route goes to the FastAPI app. Why not FastAPI for these two as well: Starlette's routing,
request objects and response classes cost about as much CPU per request as the whole rest of the
gateway (uvicorn + raw ASGI serves about twice the requests/s of uvicorn + Starlette on one core
here), and these two routes are the product's hot path. The same validation (pydantic) and the
same error shapes apply.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from gateway.calls import Call, CallKind, Reply
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    StreamInterrupted,
)
from gateway.governance.usage import UsageBook
from gateway.http.bodies import body_deadline, parse_json, read_body
from gateway.http.errors import JSON, error_body, error_headers, sse_error_event
from gateway.http.openapi import document_bytes
from gateway.outcomes import Outcomes
from gateway.requests import ChatRequest, EmbeddingsRequest
from gateway.runtime import Runtime
from gateway.telemetry import Telemetry, response_headers

log = logging.getLogger("tiergate.edge")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SSE_HEADERS = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
DONE_EVENT = b"data: [DONE]\n\n"


class RuntimeHolder:
    """The one reference that a reload swaps; in-flight calls keep the runtime they started with."""

    def __init__(self) -> None:
        self.current: Runtime | None = None
        self.usage: UsageBook | None = None  # process-wide, set in the lifespan


@dataclass(slots=True)
class Incoming:
    """The few request headers the hot path reads, picked from the ASGI header list once."""

    authorization: str | None = None
    request_id: str | None = None
    content_length: int | None = None
    # Request headers stages read (cache directives, namespace, later idempotency and feature).
    stage_headers: dict[str, str] = field(default_factory=dict)


MAX_REQUEST_ID = 128


def valid_request_id(value: bytes) -> str | None:
    """The caller's x-request-id, if short and printable (it goes into logs and headers)."""
    rid = value.decode("latin-1")
    return rid if 0 < len(rid) <= MAX_REQUEST_ID and rid.isprintable() else None


def pick_headers(raw: list[tuple[bytes, bytes]]) -> Incoming:
    inc = Incoming()
    for name, value in raw:
        if name == b"authorization":
            if inc.authorization is not None:
                raise DuplicateAuthorization()
            inc.authorization = value.decode("latin-1")
        elif name == b"x-request-id":
            inc.request_id = valid_request_id(value)
        elif name == b"content-length":
            try:
                inc.content_length = int(value)
            except ValueError:
                inc.content_length = None
        elif name == b"idempotency-key":
            inc.stage_headers["x-tiergate-idempotency-key"] = value.decode("latin-1")[:256]
        elif name == b"cache-control" or name.startswith(b"x-tiergate-"):
            inc.stage_headers[name.decode("latin-1")] = value.decode("latin-1")[:256]
    return inc


def new_request_id() -> str:
    # 96 random bits from the process's PRNG (seeded from the OS, reseeded after fork): an id
    # needs to be unique, not secret, and os.urandom costs a system call per request.
    return f"req_{random.getrandbits(96):024x}"


class DuplicateAuthorization(InvalidRequest):
    """Two Authorization headers: refused on every route, never resolved one way or another."""

    def __init__(self) -> None:
        super().__init__("Send one Authorization header, not several.", param="authorization")


def screened_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers for the routes off the hot path, held to the hot path's rules: one
    Authorization header (else ``DuplicateAuthorization``), an x-request-id only if valid."""
    out: list[tuple[bytes, bytes]] = []
    seen_auth = False
    for name, value in raw:
        if name == b"authorization":
            if seen_auth:
                raise DuplicateAuthorization()
            seen_auth = True
        elif name == b"x-request-id" and valid_request_id(value) is None:
            continue
        out.append((name, value))
    return out


class Edge:
    """ASGI entry point: hot routes here, the rest to ``other`` (the FastAPI app)."""

    def __init__(self, holder: RuntimeHolder, telemetry: Telemetry, other: ASGIApp) -> None:
        self._holder = holder
        self._outcomes = Outcomes(holder, telemetry)  # cost, usage, alerts, log, metrics, spans
        self._other = other
        self._openapi: tuple[str, bytes] | None = None  # (config version, document)
        self._routes: dict[str, tuple[CallKind, type[ChatRequest] | type[EmbeddingsRequest]]] = {
            "/v1/chat/completions": (CallKind.CHAT, ChatRequest),
            "/chat/completions": (CallKind.CHAT, ChatRequest),
            "/v1/embeddings": (CallKind.EMBEDDINGS, EmbeddingsRequest),
            "/embeddings": (CallKind.EMBEDDINGS, EmbeddingsRequest),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._routes.get(scope["path"])
            if route is not None:
                await self._serve(scope, receive, send, *route)
                return
            if scope["path"] == "/openapi.json" and scope["method"] == "GET":
                await self._send_openapi(send)
                return
            try:
                scope["headers"] = screened_headers(scope["headers"])
            except DuplicateAuthorization as err:
                await self._send_error(send, err, new_request_id())
                return
            receive = body_deadline(receive, self._body_timeout_s())
        await self._other(scope, receive, send)

    async def _send_openapi(self, send: Send) -> None:
        runtime = self._holder.current
        version = runtime.config_version if runtime else "starting"
        if self._openapi is None or self._openapi[0] != version:
            self._openapi = (version, document_bytes(version))
        body = self._openapi[1]
        headers = [JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _body_timeout_s(self) -> float:
        runtime = self._holder.current
        return runtime.rules.limits.body_timeout_s if runtime else 30.0

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        kind: CallKind,
        model: type[ChatRequest] | type[EmbeddingsRequest],
    ) -> None:
        started_ns = time.perf_counter_ns()
        try:
            inc = pick_headers(scope["headers"])
        except DuplicateAuthorization as err:
            await self._send_error(send, err, new_request_id())
            return
        request_id = inc.request_id or new_request_id()
        runtime = self._holder.current
        call: Call | None = None
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} is not allowed here; use POST.")
            if runtime is None:
                raise GatewayError("The gateway is starting; try again.", status=503)
            principal = await runtime.keys.authenticate(inc.authorization)
            limits = runtime.rules.limits
            body = await read_body(
                receive, inc.content_length, limits.max_body_bytes, limits.body_timeout_s
            )
            request = parse_json(body, model)
            call = Call(
                request_id=request_id,
                principal=principal,
                kind=kind,
                alias=request.model,
                request=request,
                started_ns=started_ns,
                config_version=runtime.config_version,
                headers=inc.stage_headers,
            )
            reply = await runtime.pipeline(call)
        except GatewayError as err:
            await self._send_error(send, err, request_id)
            self._finish_error(call, err, request_id, started_ns)
            return
        except Exception as exc:
            log.exception("unexpected error in request %s", request_id)
            internal = GatewayError(f"Internal error ({type(exc).__name__}); id {request_id}.")
            await self._send_error(send, internal, request_id)
            self._finish_error(call, internal, request_id, started_ns)
            return
        if call.stream:
            await self._send_stream(call, reply, receive, send, started_ns)
        else:
            await self._send_whole(call, reply, send, started_ns)

    def record_background(
        self, call: Call, reply: Reply | None, err: GatewayError | None, started_ns: int
    ) -> None:
        """Account a call the gateway made for itself (a batch line) as it does a served one:
        usage, cost, metrics and the request log."""
        if reply is not None:
            self._finish(call, reply, 200, "ok", None, started_ns, None, None)
        elif err is not None:
            self._finish_error(call, err, call.request_id, started_ns)

    async def _send_error(self, send: Send, err: GatewayError, request_id: str) -> None:
        body = error_body(err)
        headers = error_headers(err, request_id)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _headers(self, call: Call, reply: Reply, started_ns: int) -> tuple[list[Any], float]:
        elapsed_s = (time.perf_counter_ns() - started_ns) / 1e9
        overhead_s = max(0.0, elapsed_s - reply.stats.upstream_first_s)
        headers = response_headers(
            reply.notes, reply.stats.model, call.config_version, overhead_s * 1000
        )
        headers.append((b"x-request-id", call.request_id.encode()))
        return headers, overhead_s

    async def _send_whole(self, call: Call, reply: Reply, send: Send, started_ns: int) -> None:
        try:
            body = await anext(reply.chunks)
        except (GatewayError, StopAsyncIteration) as exc:
            # The fallback chain has already read the first (only) chunk; this cannot fail.
            err = exc if isinstance(exc, GatewayError) else InvalidRequest("empty answer")
            await self._send_error(send, err, call.request_id)
            self._finish_error(call, err, call.request_id, started_ns)
            return
        finally:
            await reply.chunks.aclose()  # type: ignore[attr-defined]
        headers, overhead_s = self._headers(call, reply, started_ns)
        headers.append(JSON)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._finish(call, reply, 200, "ok", None, started_ns, None, overhead_s)

    async def _send_stream(
        self, call: Call, reply: Reply, receive: Receive, send: Send, started_ns: int
    ) -> None:
        headers, overhead_s = self._headers(call, reply, started_ns)
        headers.extend(SSE_HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        ttft_s: float | None = None
        outcome, error_kind = "ok", None
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, task))
        try:
            async for chunk in reply.chunks:
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"data: " + chunk + b"\n\n",
                        "more_body": True,
                    }
                )
                if ttft_s is None:
                    ttft_s = (time.perf_counter_ns() - started_ns) / 1e9
            tail = DONE_EVENT
        except GatewayError as err:
            # After the first chunk there is no failover: tell the client, end the stream
            # cleanly, and never send [DONE] for an answer that is not complete.
            if not isinstance(err, StreamInterrupted):
                err = StreamInterrupted(err.message)
            outcome, error_kind = "stream_error", err.kind
            tail = sse_error_event(err)
        except asyncio.CancelledError:
            if not watcher.done() or watcher.cancelled():
                raise
            if task is not None:
                task.uncancel()  # the cancel was ours, not the server's
            outcome, error_kind = "client_disconnected", "ClientDisconnected"
            self._finish(call, reply, 499, outcome, error_kind, started_ns, ttft_s, overhead_s)
            return
        finally:
            watcher.cancel()
            await reply.chunks.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        self._finish(call, reply, 200, outcome, error_kind, started_ns, ttft_s, overhead_s)

    def _finish(
        self,
        call: Call,
        reply: Reply,
        status: int,
        outcome: str,
        error_kind: str | None,
        started_ns: int,
        ttft_s: float | None,
        overhead_s: float | None,
    ) -> None:
        self._outcomes.finish(
            call, reply, status, outcome, error_kind, started_ns, ttft_s, overhead_s
        )

    def _finish_error(
        self, call: Call | None, err: GatewayError, request_id: str, started_ns: int
    ) -> None:
        self._outcomes.finish_error(call, err, request_id, started_ns)

    # The bookkeeping the translated surfaces share (gateway.http.surface_edge).
    finish = _finish
    finish_error = _finish_error
    reply_headers = _headers


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any] | None) -> None:
    """Cancel the streaming task when the client goes away, so the upstream call is closed."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if task is not None:
                task.cancel()
            return
