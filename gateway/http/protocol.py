"""uvicorn's httptools protocol with the limits it lacks: header size and header-read time.

When to use: ``tiergate serve`` passes ``guarded_protocol(settings)`` to uvicorn as its ``http``
protocol class. Policy:

- The request line and headers together may take at most ``max_header_bytes`` (default 32 KiB,
  ``GATEWAY_MAX_HEADER_BYTES``); more is answered 431 and the connection closed. llhttp (under
  httptools) has no such limit of its own: a 1 MB header was accepted.
- A connection must deliver a complete request head within ``header_timeout_s`` (default 10 s,
  ``GATEWAY_HEADER_TIMEOUT_S``) of opening or of its previous answer's end (or the keep-alive
  timeout closes it first); otherwise 408 and closed. Slow-header clients (slowloris) cannot hold
  connections indefinitely.
- A message llhttp cannot parse (a header name with a space, a control character in a value,
  a broken request line) is answered 400 with the OpenAI error JSON, and the connection closed.
- The body has its own deadline, ``limits.body_timeout_s`` in the rules (408), enforced where
  the body is read (``gateway/http/bodies.py``).
- A response's head leaves with its body's first write (``HeadCork``): uvicorn writes the head at
  ``http.response.start`` and the body at ``http.response.body``, two system calls for every
  answer; holding the head for the body's write makes a whole answer one.

Refusals here happen before any ASGI app runs: the protocol writes the OpenAI error JSON itself.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def refusal(status: int, message: str, code: str) -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    )
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class HeadCork:
    """The request cycle's view of the connection: holds a response head back until the next
    write, so head and body leave in one ``write`` (one system call) instead of two. One cork
    serves one request cycle, whose first write other than ``100 Continue`` is its response
    head (uvicorn writes it whole at ``http.response.start``): that write is held, everything
    after it passes straight through; ``close`` and the end of the response (``flush``) send a
    head still held."""

    __slots__ = ("_fresh", "_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head = b""
        self._fresh = True  # the response head has not been written yet

    def write(self, data: bytes) -> None:
        if self._head:
            data, self._head = self._head + data, b""
        elif self._fresh and bytes(data[:13]) != b"HTTP/1.1 100 ":
            self._fresh = False
            self._head = bytes(data)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol + a header size cap and a header-read deadline (class attributes set
    by ``guarded_protocol``)."""

    max_header_bytes = 32 * 1024
    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()  # the next request on a kept-alive connection begins
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._refuse(
                    431,
                    f"Request headers exceed {self.max_header_bytes} bytes.",
                    "request_header_fields_too_large",
                )
                return
            # a malformed message (a bad header name or value, request line, ...): the same 400
            # uvicorn sends, as an OpenAI error, and the connection closed
            self._refuse(400, "Invalid HTTP request received.", "invalid_http_request")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # No new cycle when the parser stopped for an upgrade: the previous request's cycle (and
        # its cork) is left as it is.
        if cycle is not None and cycle is not before:
            cork = HeadCork(self.transport)
            cycle.transport = cork  # type: ignore[assignment]
            cycle.on_response = functools.partial(self._response_sent, cork)

    def _response_sent(self, cork: HeadCork) -> None:
        # A response with no body write (HEAD) still has its head held: send it first.
        cork.flush()
        self.on_response_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._too_large = True
            raise ValueError("request head too large")  # stops the parser

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; its body has its own deadline
        message = f"The request head did not arrive within {self.header_timeout_s:g} s."
        self._refuse(408, message, "request_timeout")

    def _flush_cork(self) -> None:
        """Send a response head still held, before the protocol itself writes to the wire."""
        if self.cycle is not None and isinstance(self.cycle.transport, HeadCork):
            self.cycle.transport.flush()

    def _refuse(self, status: int, message: str, code: str) -> None:
        self._flush_cork()
        self._disarm_head_timer()
        self._unset_keepalive_if_required()
        if not self.transport.is_closing():
            self.transport.write(refusal(status, message, code))
            self.transport.close()


def guarded_protocol(max_header_bytes: int, header_timeout_s: float) -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with these limits."""
    return type(
        "GatewayHttpProtocol",
        (GuardedProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s},
    )
