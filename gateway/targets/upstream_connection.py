"""One pooled HTTP/1.1 connection to an upstream: an asyncio Protocol fed by ``httptools``.

Internal to ``gateway.targets.upstream`` (use ``UpstreamPool`` there). The protocol only records
what arrived and wakes the one task waiting on it, so parsing a response costs a few parser
callbacks and a single wake-up of the waiting task.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools

from gateway.targets.upstream_errors import ProtocolError, ReadTimeout, UpstreamError

if TYPE_CHECKING:
    from gateway.targets.upstream_origin import OriginConnections

# Above this many unconsumed bytes the socket stops being read, so a slow consumer of a fast
# stream pushes back on the upstream instead of growing our memory (one read adds <= 256 KiB).
HIGH_WATER_BYTES = 256 * 1024
# Request bodies up to this size go out in one write together with the head (one syscall).
_JOIN_BODY_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset((204, 304))


class _StopParsingError(Exception):
    """Raised from a parser callback to stop httptools (it has no "skip body" switch)."""


def _expire_read(waiter: asyncio.Future[None], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(f"no response bytes within {timeout_s:g}s"))


class Connection(asyncio.Protocol):
    """One keep-alive connection. The task that sent a request waits with ``wait()``."""

    __slots__ = (
        "active",
        "body",
        "buffered",
        "complete",
        "eof_body",
        "error",
        "got_bytes",
        "head_only",
        "headers",
        "headers_done",
        "idle",
        "idle_since",
        "keep_alive",
        "loop",
        "lost",
        "on_body",
        "owner",
        "parser",
        "paused",
        "requests",
        "slot_held",
        "stale",
        "status",
        "stopped",
        "transport",
        "waiter",
    )

    def __init__(self, owner: OriginConnections, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # httptools calls on_body once per body piece (per chunk of a chunked SSE stream): make
        # it the list's own append, no Python frame. The list is therefore never replaced.
        self.body: list[bytes] = []
        self.on_body = self.body.append
        self.buffered = 0  # bytes received since the consumer last took the body
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.eof_body = False  # neither content-length nor chunked: the body ends at EOF
        self.head_only = False
        self.stopped = False  # the parser was stopped by _StopParsingError and must be replaced
        self.active = False  # a request was sent and its response is not finished
        self.got_bytes = False
        self.stale = False  # closed before any byte of the response arrived
        self.error: UpstreamError | None = None
        self.lost = False
        self.slot_held = True
        self.paused = False
        self.idle = False
        self.idle_since = 0.0
        self.requests = 0
        self.waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio callbacks ------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes on an idle connection (e.g. a 408): it cannot be reused
            self.abort()
            return
        self.got_bytes = True
        self.buffered += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError("the upstream switched protocols"))
            return
        except httptools.HttpParserError as exc:
            if not self.complete:
                self.fail(ProtocolError(f"malformed response from the upstream: {exc}"))
                return
            if not self.stopped:  # junk after a complete response: keep it, drop the socket
                self.abort()
        if self.buffered > HIGH_WATER_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        if self.idle:  # the server closed a kept-alive connection: discard it
            self.owner.forget_idle(self)
        if self.active and not self.complete:
            if self.headers_done and self.eof_body and exc is None:
                self.complete = True
                self.keep_alive = False
            elif self.error is None:
                self.stale = not self.got_bytes
                self.error = ProtocolError(
                    "the upstream closed the connection mid-response"
                    if self.got_bytes
                    else "the upstream closed the connection before responding"
                )
        self.release_slot()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---------------------------------------------------------------- httptools callbacks ----
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:  # a second response to one request; on_headers_complete stops it
            return
        key = name.decode("latin-1").lower()
        headers = self.headers
        if key in headers:
            headers[key] += ", " + value.decode("latin-1")
        else:
            headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = {}  # interim response (100 Continue, 103 Early Hints): not ours
            return
        if self.complete:  # a second response to one request: stop, never reuse
            self.keep_alive = False
            self.stopped = True
            raise _StopParsingError
        self.status = status
        self.headers_done = True
        if self.head_only:  # httptools would wait for the body that HEAD announces but never sends
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()
            self.stopped = True
            raise _StopParsingError
        headers = self.headers
        self.eof_body = (
            status not in _NO_BODY_STATUSES
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        )

    def on_message_complete(self) -> None:
        if self.headers_done and not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    # ---------------------------------------------------------------- used by the client -----
    def send(self, head: bytes, body: bytes, head_only: bool) -> None:
        """Start one request/response exchange on this connection."""
        if self.stopped:
            self.parser = httptools.HttpResponseParser(self)
            self.stopped = False
        self.status = 0
        self.headers = {}
        self.headers_done = self.complete = self.keep_alive = self.eof_body = False
        self.got_bytes = self.stale = False
        self.error = None
        self.buffered = 0
        self.head_only = head_only
        self.active = True
        transport = self.transport
        if transport is None or self.lost:
            self.stale = True
            self.error = ProtocolError("the upstream closed the connection before responding")
        elif len(body) <= _JOIN_BODY_BYTES:
            transport.write(head + body)
        else:
            transport.write(head)
            transport.write(body)

    async def wait(self, timeout_s: float) -> None:
        """Wait for progress (bytes, end of response, error); ReadTimeout after ``timeout_s``."""
        waiter = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(timeout_s, _expire_read, waiter, timeout_s)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # a timeout racing a cancellation: mark it retrieved

    def take(self) -> bytes:
        """All body bytes received so far (and resume reading if we had paused)."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self.paused:
            self.resume()
        return data

    def take_parts(self) -> list[bytes]:
        parts = self.body[:]
        self.body.clear()
        self.buffered = 0
        if self.paused:
            self.resume()
        return parts

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.lost:
            self.transport.resume_reading()

    def finish(self) -> None:
        """The whole response was consumed: back to the pool, or closed."""
        self.active = False
        self.requests += 1
        if self.keep_alive and not self.lost and not self.body:
            self.owner.release(self)
        else:
            self.abort()

    def fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self.abort()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """Close now and give the slot back; never reused. Safe to call more than once."""
        self.keep_alive = False
        self.lost = True
        transport = self.transport
        if transport is not None:
            self.transport = None
            transport.abort()
        if self.idle:
            self.owner.forget_idle(self)
        self.release_slot()

    def release_slot(self) -> None:
        if self.slot_held:
            self.slot_held = False
            self.owner.slot_freed(self)
