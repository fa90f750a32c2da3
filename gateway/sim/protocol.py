"""A minimal HTTP/1.1 server protocol (asyncio + httptools) that executes response plans.

Why hand-written: the sim sits behind the gateway in benchmarks and must not be the bottleneck;
a bare ``asyncio.Protocol`` on uvloop serves several times the requests/s of an ASGI stack.
The protocol knows nothing about LLMs: a handler turns each request into a *plan* (a full
response, a paced SSE stream, a hang or a dropped connection) and the protocol carries it out.
Keep-alive is supported and pipelined requests on one connection are answered in order; only
Content-Length bodies are accepted (no chunked uploads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import NamedTuple, cast

import httptools

JSON = b"application/json"
SSE = b"text/event-stream"
MAX_BODY_BYTES = 64 * 1024 * 1024
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_TOO_LARGE_BODY = b'{"error":{"message":"request body too large","type":"invalid_request_error"}}'
_TOO_LARGE = (
    b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
log = logging.getLogger("tiergate.sim")


class Full(NamedTuple):
    """A complete response, sent after ``delay_s``."""

    status: int
    body: bytes
    headers: bytes = b""  # extra header lines, each ending in \r\n
    content_type: bytes = JSON
    delay_s: float = 0.0


class Streamed(NamedTuple):
    """An SSE response: headers at once, ``first`` after ``ttft_s``, then ``paced`` events
    ``gap_s`` apart, then ``tail``; with ``abort`` the connection is cut instead of ``tail``."""

    headers: bytes
    first: bytes
    paced: tuple[bytes, ...]
    tail: bytes
    ttft_s: float = 0.0
    gap_s: float = 0.0
    abort: bool = False


class Hang(NamedTuple):
    """Accept the request and never answer."""


class Drop(NamedTuple):
    """Close the connection without a response after ``delay_s``."""

    delay_s: float = 0.0


Plan = Full | Streamed | Hang | Drop
Handler = Callable[[bytes, bytes, bytes, dict[bytes, bytes]], Plan]


def response_head(
    status: int, content_type: bytes, length: int | None, extra: bytes, keep: bool
) -> bytes:
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\n" % (
        status,
        _REASONS.get(status, b"Unknown"),
        content_type,
    )
    if length is None:
        head += b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
    else:
        head += b"content-length: %d\r\n" % length
    if not keep:
        head += b"connection: close\r\n"
    return head + extra + b"\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


class SimConnection(asyncio.Protocol):
    """One client connection. ``handler`` builds plans from the request headers whose names
    start with ``header_prefix`` or are in ``header_names`` (others are dropped while parsing)."""

    def __init__(
        self,
        handler: Handler,
        header_prefix: bytes,
        header_names: frozenset[bytes],
        registry: set[SimConnection],
    ) -> None:
        self._handler = handler
        self._header_prefix = header_prefix
        self._header_names = header_names
        self._registry = registry
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers: dict[bytes, bytes] = {}
        self._pending: asyncio.Task[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._hung = False
        self.closed = False

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have the same methods.
        self._transport = cast(asyncio.Transport, transport)
        self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._registry.discard(self)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._hung:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(_BAD_REQUEST)

    # ---------------------------------------------------------------- httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._body, self._body_size, self._headers = b"", [], 0, {}

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name.startswith(self._header_prefix) or name in self._header_names:
            self._headers[name] = value
        elif name == b"expect" and value.lower() == b"100-continue":
            # curl sends this for bodies over 1 KiB and waits a second unless told to go on.
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            self._fail(_TOO_LARGE)
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._hung or self.closed:
            return
        keep = self._parser.should_keep_alive()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        plan = self._handler(self._parser.get_method(), self._url, body, self._headers)
        if self._pending is None and self._write_now(plan, keep):
            return
        loop = asyncio.get_running_loop()
        self._pending = loop.create_task(self._later(self._pending, plan, keep))

    # ---------------------------------------------------------------- plan execution
    def abort(self) -> asyncio.Task[None] | None:
        """Drop the connection at once (server shutdown); returns the cancelled task to await."""
        if self._transport is not None and not self.closed:
            self._transport.abort()
        pending = self._pending
        if pending is not None:
            pending.cancel()
        return pending

    def _fail(self, response: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(response)
            self._transport.close()
        self._hung = True

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def _finish(self, keep: bool) -> None:
        if not keep and self._transport is not None:
            self._transport.close()

    def _write_now(self, plan: Plan, keep: bool) -> bool:
        """Carry out a plan that needs no pause; False if it needs a task."""
        if isinstance(plan, Full):
            if plan.delay_s > 0:
                return False
            self._write(
                response_head(plan.status, plan.content_type, len(plan.body), plan.headers, keep)
                + plan.body
            )
            self._finish(keep)
            return True
        if isinstance(plan, Streamed):
            if plan.ttft_s > 0 or (plan.gap_s > 0 and plan.paced):
                return False
            parts = [response_head(200, SSE, None, plan.headers, keep), chunk(plan.first)]
            parts.extend(chunk(event) for event in plan.paced)
            if plan.abort:
                self._write(b"".join(parts))
                self._close()
                return True
            parts.append(chunk(plan.tail) + b"0\r\n\r\n")
            self._write(b"".join(parts))
            self._finish(keep)
            return True
        if isinstance(plan, Hang):
            self._hung = True
            return True
        if plan.delay_s > 0:
            return False
        self._close()
        return True

    def _close(self) -> None:
        self._hung = True
        if self._transport is not None:
            self._transport.close()

    async def _later(self, previous: asyncio.Task[None] | None, plan: Plan, keep: bool) -> None:
        me = asyncio.current_task()
        try:
            if previous is not None:
                await previous
            await self._run(plan, keep)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sim: failed while answering a request")
            self._close()
        finally:
            if self._pending is me:
                self._pending = None

    async def _run(self, plan: Plan, keep: bool) -> None:
        if self.closed:
            return
        if isinstance(plan, Full | Drop) and plan.delay_s > 0:
            await asyncio.sleep(plan.delay_s)
        if isinstance(plan, Hang):
            self._hung = True
            self._lost = asyncio.get_running_loop().create_future()
            await self._lost
            return
        if not isinstance(plan, Streamed) or (plan.ttft_s <= 0 and plan.gap_s <= 0):
            self._write_now(plan if not isinstance(plan, Full | Drop) else _undelayed(plan), keep)
            return
        await self._stream(plan, keep)

    async def _stream(self, plan: Streamed, keep: bool) -> None:
        self._write(response_head(200, SSE, None, plan.headers, keep))
        if plan.ttft_s > 0:
            await asyncio.sleep(plan.ttft_s)
        self._write(chunk(plan.first))
        for event in plan.paced:
            if plan.gap_s > 0:
                await asyncio.sleep(plan.gap_s)
            if self.closed:
                return
            self._write(chunk(event))
        if plan.abort:
            self._close()
            return
        self._write(chunk(plan.tail) + b"0\r\n\r\n")
        self._finish(keep)


def _undelayed(plan: Full | Drop) -> Full | Drop:
    if isinstance(plan, Full):
        return Full(plan.status, plan.body, plan.headers, plan.content_type)
    return Drop()
