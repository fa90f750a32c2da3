"""Serving the translated client APIs (legacy completions, Responses, Anthropic Messages).

``SurfaceEdge`` sits in front of the hot ``Edge``: a POST to a surface's path is read, checked
(the same key check as chat), translated to a chat ``Call`` and run through the same pipeline;
the answer is rendered by the surface. Everything else goes on to the ``Edge`` unchanged, so
chat completions pay one dict lookup for this layer. Request logs, metrics and usage are written
by the ``Edge``'s own bookkeeping, so a translated call is counted exactly like a chat call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from gateway.calls import Call, CallKind, Note, Reply
from gateway.errors import GatewayError, MethodNotAllowed, StreamInterrupted
from gateway.http.bodies import read_body
from gateway.http.edge import (
    SSE_HEADERS,
    Edge,
    Receive,
    RuntimeHolder,
    Scope,
    Send,
    new_request_id,
    pick_headers,
)
from gateway.http.errors import JSON, error_headers
from gateway.state import StateStore
from gateway.surface.base import Context, Surface
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.surface")


def api_key_header(raw: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in raw:
        if name == b"x-api-key":
            return "Bearer " + value.decode("latin-1").strip()
    return None


class SurfaceEdge:
    """ASGI app: the surfaces' POST routes here, anything else to ``edge``."""

    def __init__(
        self,
        edge: Edge,
        holder: RuntimeHolder,
        surfaces: Mapping[str, Surface],
        extra: Mapping[str, Callable[[Scope, Receive, Send], Any]] | None = None,
    ) -> None:
        self._edge = edge
        self._holder = holder
        self._surfaces = dict(surfaces)
        # Prefix routes the surfaces own besides their POST (e.g. GET /v1/responses/{id}).
        self._extra = dict(extra or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            surface = self._surfaces.get(path)
            if surface is not None:
                await self._serve(surface, scope, receive, send)
                return
            for prefix, app in self._extra.items():
                if path.startswith(prefix):
                    await app(scope, receive, send)
                    return
        await self._edge(scope, receive, send)

    async def _serve(self, surface: Surface, scope: Scope, receive: Receive, send: Send) -> None:
        started_ns = time.perf_counter_ns()
        inc = pick_headers(scope["headers"])
        request_id = inc.request_id or new_request_id()
        runtime = self._holder.current
        call: Call | None = None
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} is not allowed here; use POST.")
            if runtime is None:
                raise GatewayError("The gateway is starting; try again.", status=503)
            credential = inc.authorization
            if surface.accepts_x_api_key and credential is None:
                credential = api_key_header(scope["headers"])
            principal = await runtime.keys.authenticate(credential)
            body = await read_body(receive, inc.content_length, runtime.rules.limits.max_body_bytes)
            translated = await surface.translate(
                body, Context(principal, runtime.rules, request_id)
            )
            call = Call(
                request_id=request_id,
                principal=principal,
                kind=CallKind.CHAT,
                alias=translated.request.model,
                request=translated.request,
                started_ns=started_ns,
                config_version=runtime.config_version,
                headers=inc.stage_headers,
            )
            reply = (await runtime.pipeline(call)).noted(Note("surface", surface.name))
            if not translated.stream:
                try:
                    answer = await anext(reply.chunks)
                finally:
                    await reply.chunks.aclose()  # type: ignore[attr-defined]
                rendered = await surface.whole(translated, answer, reply)
        except GatewayError as err:
            await self._send_error(surface, send, err, request_id)
            self._edge.finish_error(call, err, request_id, started_ns)
            return
        except Exception as exc:
            log.exception("unexpected error in request %s", request_id)
            internal = GatewayError(f"Internal error ({type(exc).__name__}); id {request_id}.")
            await self._send_error(surface, send, internal, request_id)
            self._edge.finish_error(call, internal, request_id, started_ns)
            return
        if translated.stream:
            await self._send_stream(surface, translated, call, reply, receive, send, started_ns)
            return
        headers, overhead_s = self._edge.reply_headers(call, reply, started_ns)
        headers.append(JSON)
        headers.append((b"content-length", str(len(rendered)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": rendered})
        self._edge.finish(call, reply, 200, "ok", None, started_ns, None, overhead_s)

    async def _send_error(
        self, surface: Surface, send: Send, err: GatewayError, request_id: str
    ) -> None:
        body = surface.error_body(err)
        headers = error_headers(err, request_id)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_stream(
        self,
        surface: Surface,
        translated: Any,
        call: Call,
        reply: Reply,
        receive: Receive,
        send: Send,
        started_ns: int,
    ) -> None:
        headers, overhead_s = self._edge.reply_headers(call, reply, started_ns)
        headers.extend(SSE_HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        ttft_s: float | None = None
        outcome, error_kind = "ok", None
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, task))
        events = surface.stream(translated, reply)
        try:
            async for frame in events:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                if ttft_s is None:
                    ttft_s = (time.perf_counter_ns() - started_ns) / 1e9
            tail = surface.stream_tail
        except GatewayError as err:
            if not isinstance(err, StreamInterrupted):
                err = StreamInterrupted(err.message)
            outcome, error_kind = "stream_error", err.kind
            tail = surface.stream_error(err)
        except asyncio.CancelledError:
            if not watcher.done() or watcher.cancelled():
                raise
            if task is not None:
                task.uncancel()
            outcome, error_kind = "client_disconnected", "ClientDisconnected"
            self._edge.finish(call, reply, 499, outcome, error_kind, started_ns, ttft_s, overhead_s)
            return
        finally:
            watcher.cancel()
            await events.aclose()  # type: ignore[attr-defined]
            await reply.chunks.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        self._edge.finish(call, reply, 200, outcome, error_kind, started_ns, ttft_s, overhead_s)


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any] | None) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if task is not None:
                task.cancel()
            return


def with_surfaces(
    edge: Edge, holder: RuntimeHolder, state: Callable[[], StateStore | None], spawner: Spawner
) -> SurfaceEdge:
    """The gateway's outermost ASGI app: every translated surface in front of ``edge``."""
    from gateway.http.responses_routes import PREFIXES, StoredResponses
    from gateway.surface.completions import LegacyCompletions
    from gateway.surface.messages import AnthropicMessages
    from gateway.surface.responses import ResponsesSurface
    from gateway.surface.responses_store import ResponseStore

    def redis() -> Redis | None:
        current = state()
        return None if current is None else current.redis

    store = ResponseStore(redis, spawner)

    surfaces: dict[str, Surface] = {}
    for path, surface in (
        ("/completions", LegacyCompletions()),
        ("/responses", ResponsesSurface(store)),
        ("/messages", AnthropicMessages()),
    ):
        surfaces["/v1" + path] = surface
        surfaces[path] = surface
    stored = StoredResponses(holder, store)
    return SurfaceEdge(edge, holder, surfaces, dict.fromkeys(PREFIXES, stored))
