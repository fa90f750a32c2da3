"""The connections of one upstream origin: idle stack, connection bound, waiting requests.

Internal to ``gateway.targets.upstream`` (use ``UpstreamPool`` there). Policy: idle connections
are reused LIFO (the most recently used socket is the one least likely to have been closed by the
server, and the idle ones at the bottom age out after the idle timeout); at most
``max_connections`` are open or connecting; at the bound, requests wait FIFO and get either a
connection handed over as it is released or the slot of one that closed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from gateway.targets.upstream_connection import Connection
from gateway.targets.upstream_errors import ConnectError, ConnectTimeout


def _expire_turn(waiter: asyncio.Future[Connection | None], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(ConnectTimeout(f"no free upstream connection within {timeout_s:g}s"))


class OriginConnections:
    """The connections to one origin: idle LIFO stack, slot bound, FIFO of waiting requests."""

    __slots__ = (
        "closed",
        "host",
        "idle",
        "idle_timeout_s",
        "live",
        "loop",
        "max_connections",
        "port",
        "ssl_context",
        "sweep_timer",
        "total",
        "waiters",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        idle_timeout_s: float,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.idle: list[Connection] = []
        self.live: set[Connection] = set()
        self.total = 0  # slots taken: open or connecting connections
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        self.sweep_timer: asyncio.TimerHandle | None = None
        self.closed = False

    async def acquire(self, timeout_s: float, *, fresh: bool) -> Connection:
        """An idle connection (unless ``fresh``), a new one, or the next one freed at the bound."""
        if self.closed:
            raise ConnectError("the upstream pool is closed")
        idle = self.idle
        if idle and not fresh:
            oldest_ok = self.loop.time() - self.idle_timeout_s
            while idle:
                conn = idle.pop()
                conn.idle = False
                if conn.idle_since > oldest_ok:
                    return conn
                conn.abort()  # expired; everything below it is older
        if self.total < self.max_connections:
            self.total += 1
            return await self._connect(timeout_s)
        if fresh and idle:
            self._take_slot(idle[0])
            return await self._connect(timeout_s)
        got = await self._wait_turn(timeout_s)
        if got is None:  # a slot was reserved for us
            return await self._connect(timeout_s)
        if fresh:
            self._take_slot(got)
            return await self._connect(timeout_s)
        return got

    async def _wait_turn(self, timeout_s: float) -> Connection | None:
        waiter: asyncio.Future[Connection | None] = self.loop.create_future()
        self.waiters.append(waiter)
        timer = self.loop.call_later(timeout_s, _expire_turn, waiter, timeout_s)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                got = waiter.result()  # handed to us just as we gave up: pass it on
                if got is None:
                    self.total -= 1
                    self._wake_waiter()
                else:
                    self.release(got)
            raise
        finally:
            timer.cancel()

    def _take_slot(self, conn: Connection) -> None:
        """Close ``conn`` but keep its slot for a new connection (no waiter gets it)."""
        conn.slot_held = False
        self.live.discard(conn)
        conn.abort()

    async def _connect(self, timeout_s: float) -> Connection:
        """Open a connection in the slot the caller reserved."""
        conn = Connection(self, self.loop)
        self.live.add(conn)
        ssl_context = self.ssl_context
        try:
            async with asyncio.timeout(timeout_s):
                await self.loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=ssl_context,
                    server_hostname=self.host if ssl_context is not None else None,
                )
        except TimeoutError:
            conn.abort()
            raise ConnectTimeout(
                f"connecting to {self.host}:{self.port} took over {timeout_s:g}s"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            conn.abort()
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        except BaseException:
            conn.abort()
            raise
        if self.closed:
            conn.abort()
            raise ConnectError("the upstream pool is closed")
        return conn

    def release(self, conn: Connection) -> None:
        """A connection whose response was fully read: to the next waiter, or idle."""
        if conn.lost or self.closed:
            conn.abort()
            return
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle = True
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self.sweep_timer is None:
            self.sweep_timer = self.loop.call_later(self.idle_timeout_s, self._sweep)

    def forget_idle(self, conn: Connection) -> None:
        conn.idle = False
        self.idle.remove(conn)

    def slot_freed(self, conn: Connection) -> None:
        self.live.discard(conn)
        self.total -= 1
        self._wake_waiter()

    def _wake_waiter(self) -> None:
        """Give a free slot to the first live waiter (it connects in it)."""
        waiters = self.waiters
        while waiters and self.total < self.max_connections:
            waiter = waiters.popleft()
            if not waiter.done():
                self.total += 1
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle for longer than the idle timeout (oldest are at the bottom)."""
        self.sweep_timer = None
        now = self.loop.time()
        idle = self.idle
        while idle and idle[0].idle_since <= now - self.idle_timeout_s:
            idle[0].abort()
        if idle:
            delay_s = idle[0].idle_since + self.idle_timeout_s - now
            self.sweep_timer = self.loop.call_later(max(delay_s, 0.001), self._sweep)

    def close(self) -> None:
        """Abort every connection (idle or busy) and fail every waiter."""
        self.closed = True
        if self.sweep_timer is not None:
            self.sweep_timer.cancel()
            self.sweep_timer = None
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectError("the upstream pool is closed"))
        for conn in list(self.live):
            conn.fail(ConnectError("the upstream pool is closed"))
