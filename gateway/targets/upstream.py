"""The lean pooled HTTP/1.1 client for upstream calls (OpenAI-compatible APIs, the sim provider).

Why it exists: the gateway must sustain >= 2,500 req/s on one core *including* its own HTTP
server, so a call's client-side CPU cost must stay at a few tens of microseconds. Measured on the
2-core dev machine, aiohttp's client costs ~300 us per call inside the gateway (150-250 us of CPU
in ``bench/upstream_client.py``) and httpx ~900 us. This client, written on asyncio Protocols
(uvloop in production) and ``httptools``' response parser, costs ~23 us of CPU per call with 64
concurrent calls and ~38 us sequentially, syscalls included (same benchmark, JSON answers).

When to use it: every upstream HTTP call on the hot path. It speaks plain HTTP/1.1 keep-alive
(with TLS for https origins) and deliberately nothing more: no redirects (the gateway must never
be redirectable), no cookies, no proxies, no decompression, no HTTP/2. Build one ``UpstreamPool``
in the app's lifespan, parse each target's base URL once into an ``Origin``, and call
``request()``; read the body with ``read()`` or relay it with ``iter_chunks()``.

Pool policy: per origin, idle connections are reused LIFO (the most recently used socket is the
one least likely to have been closed by the server) and open connections are bounded; at the
bound a request waits for a free one (within its connect timeout). A request that fails on a
*reused* connection before any response byte arrived is retried once on a fresh connection (the
server closed the idle socket as we wrote: the stale keep-alive race); once response bytes
arrived a request is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from gateway.origins import DEFAULT_PORTS, Origin
from gateway.targets.upstream_connection import Connection
from gateway.targets.upstream_errors import (
    ConnectError,
    ConnectTimeout,
    ProtocolError,
    ReadTimeout,
    UpstreamError,
)
from gateway.targets.upstream_heads import RequestHeads
from gateway.targets.upstream_origin import OriginConnections

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Origin",
    "PoolStats",
    "ProtocolError",
    "ReadTimeout",
    "Response",
    "UpstreamError",
    "UpstreamPool",
]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Connections of one origin, for metrics and tests."""

    connections: int  # open or connecting
    idle: int
    waiting: int  # requests waiting for a free connection at the bound


def _host_line(origin: Origin) -> bytes:
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    if origin.port != DEFAULT_PORTS[origin.scheme]:
        host = f"{host}:{origin.port}"
    return f" HTTP/1.1\r\nhost: {host}\r\n".encode("ascii")


class Response:
    """Status and headers of an upstream response; the body follows with read()/iter_chunks().

    Consume the body fully (the connection then returns to the pool) or call ``close()``;
    ``async with response:`` closes it on exit. A response whose body had fully arrived with its
    headers has already given its connection back.
    """

    __slots__ = ("_body", "_closed", "_conn", "_read_timeout_s", "_streamed", "headers", "status")

    def __init__(
        self, conn: Connection, read_timeout_s: float, status: int, headers: Mapping[str, str]
    ) -> None:
        self.status = status
        self.headers = headers  # lower-case names; repeated headers joined with ", "
        self._read_timeout_s = read_timeout_s
        self._closed = False
        self._streamed = False
        self._body: bytes | None = None  # the whole body, once known
        self._conn: Connection | None = conn
        if conn.complete:  # the common small response: it all came in one read
            self._body = conn.take()
            self._conn = None
            conn.finish()

    async def read(self) -> bytes:
        """The whole body (de-chunked). Raises ReadTimeout/ProtocolError like request()."""
        if self._body is not None:
            return self._body
        conn = self._conn
        if conn is None or self._streamed:
            raise RuntimeError("the body was already streamed or the response closed")
        parts: list[bytes] = []
        try:
            while not conn.complete:
                if conn.body:
                    parts += conn.take_parts()
                    continue
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._read_timeout_s)
        except BaseException:
            self._abandon()
            raise
        parts += conn.take_parts()
        self._conn = None
        conn.finish()
        body = self._body = parts[0] if len(parts) == 1 else b"".join(parts)
        return body

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (de-chunked, one item per network read), for relaying."""
        return _Chunks(self)

    async def _next_chunk(self) -> bytes:
        if not self._streamed:
            self._streamed = True
            if self._body is not None:
                return self._body if self._body else await self._next_chunk()
        conn = self._conn
        if conn is None:
            if self._closed:
                raise RuntimeError("the response was closed")
            raise StopAsyncIteration
        try:
            while True:
                if conn.complete:
                    data = conn.take()
                    self._conn = None
                    conn.finish()
                    if data:
                        return data
                    raise StopAsyncIteration
                if conn.body:
                    return conn.take()
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._read_timeout_s)
        except StopAsyncIteration:
            raise
        except BaseException:
            self._abandon()
            raise

    def close(self) -> None:
        """Abandon the rest of the body: the connection is closed, not reused."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._closed = True
            conn.fail(ProtocolError("the response was closed by the caller"))

    def _abandon(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._closed = True
            conn.abort()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Safety net: a response dropped half-read must not hold its pool slot forever.
        conn = self._conn
        if conn is not None and not conn.lost:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                conn.abort()


class _Chunks:
    """Async iterator over a response body (a class, not a generator: closing is explicit)."""

    __slots__ = ("_response",)

    def __init__(self, response: Response) -> None:
        self._response = response

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        return await self._response._next_chunk()


class UpstreamPool:
    """Pooled keep-alive connections to any number of origins. One per process (app lifespan)."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 512,
        idle_timeout_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be >= 1")
        if idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be > 0")
        self._max_connections = max_connections_per_origin
        self._idle_timeout_s = idle_timeout_s
        self._ssl_context = ssl_context
        self._origins: dict[Origin, tuple[OriginConnections, RequestHeads]] = {}
        self._closed = False

    async def request(
        self,
        origin: Origin,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> Response:
        """Send one request; return once the status line and headers arrived.

        ``path`` is the full request target, query included (``origin.base_path`` is not added).
        Host and Content-Length are always sent and must not be in ``headers``.
        ``read_timeout_s`` bounds the wait for the headers and each gap between body chunks.
        Redirects are returned as they are, never followed.
        """
        entry = self._origins.get(origin)
        if entry is None:
            entry = self._open(origin)
        conns, heads = entry
        head = heads.build(method, path, headers, len(body))
        head_only = method == "HEAD"
        conn = await conns.acquire(connect_timeout_s, fresh=False)
        reused = conn.requests > 0
        try:
            return await self._exchange(conn, head, body, head_only, read_timeout_s)
        except ProtocolError:
            if not (reused and conn.stale):
                raise
        conn = await conns.acquire(connect_timeout_s, fresh=True)
        return await self._exchange(conn, head, body, head_only, read_timeout_s)

    async def _exchange(
        self, conn: Connection, head: bytes, body: bytes, head_only: bool, read_timeout_s: float
    ) -> Response:
        try:
            conn.send(head, body, head_only)
            while not conn.headers_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(read_timeout_s)
        except BaseException:
            conn.abort()
            raise
        return Response(conn, read_timeout_s, conn.status, conn.headers)

    def _open(self, origin: Origin) -> tuple[OriginConnections, RequestHeads]:
        if self._closed:
            raise ConnectError("the upstream pool is closed")
        ssl_context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            ssl_context = self._ssl_context
        conns = OriginConnections(
            asyncio.get_running_loop(),
            origin.host,
            origin.port,
            ssl_context=ssl_context,
            max_connections=self._max_connections,
            idle_timeout_s=self._idle_timeout_s,
        )
        entry = self._origins[origin] = (conns, RequestHeads(_host_line(origin)))
        return entry

    def stats(self, origin: Origin) -> PoolStats:
        entry = self._origins.get(origin)
        if entry is None:
            return PoolStats(0, 0, 0)
        conns = entry[0]
        waiting = sum(1 for waiter in conns.waiters if not waiter.done())
        return PoolStats(conns.total, len(conns.idle), waiting)

    async def aclose(self) -> None:
        """Close every connection (in-flight responses fail with ConnectError) and stop."""
        self._closed = True
        for conns, _ in self._origins.values():
            conns.close()
        self._origins.clear()
        # Let the transports run their connection_lost callbacks before the loop moves on.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
