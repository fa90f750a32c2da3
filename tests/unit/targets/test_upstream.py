"""UpstreamPool against small real asyncio servers on port 0 (no stand-ins: real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.targets.upstream import (
    ConnectError,
    ConnectTimeout,
    Origin,
    ProtocolError,
    ReadTimeout,
    Response,
    UpstreamError,
    UpstreamPool,
)
from gateway.targets.upstream_connection import HIGH_WATER_BYTES

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]
TIMEOUTS: dict[str, Any] = {"connect_timeout_s": 2.0, "read_timeout_s": 2.0}


class Request:
    def __init__(self, line: bytes, headers: dict[bytes, bytes], body: bytes) -> None:
        self.line, self.headers, self.body = line, headers, body


class Server:
    """A real TCP server on 127.0.0.1:0; ``handler`` serves one connection."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[Request] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.closed_by_peer = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.origin = Origin.parse(f"{scheme}://127.0.0.1:{self.port}/v1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_peer += 1
            return None
        line, *rest = head[:-4].split(b"\r\n")
        headers = dict(h.split(b": ", 1) for h in rest)
        headers = {k.lower(): v for k, v in headers.items()}
        body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        request = Request(line, headers, body)
        self.requests.append(request)
        return request


def reply(body: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n%s\r\n" % (status, len(body), extra)
    return head + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


async def echo_forever(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
) -> None:
    """Keep-alive server: answers every request with its own body."""
    while (request := await srv.read_request(reader)) is not None:
        writer.write(reply(b"echo:" + request.body))


async def call(pool: UpstreamPool, srv: Server, body: bytes = b"{}", **kw: Any) -> Response:
    options = {**TIMEOUTS, **kw}
    method = options.pop("method", "POST")
    headers = options.pop("headers", (("content-type", "application/json"),))
    path = options.pop("path", "/v1/chat/completions")
    return await pool.request(srv.origin, method, path, headers, body, **options)


# ------------------------------------------------------------------ bodies and framing --------
@pytest.mark.asyncio
async def test_content_length_body_and_request_head() -> None:
    async with Server(echo_forever) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv, b'{"a":1}', headers=[("authorization", "Bearer k")])
        assert response.status == 200
        assert response.headers["content-length"] == "12"
        assert await response.read() == b'echo:{"a":1}'
        assert await response.read() == b'echo:{"a":1}'  # cached
        request = srv.requests[0]
        assert request.line == b"POST /v1/chat/completions HTTP/1.1"
        assert request.headers[b"host"] == f"127.0.0.1:{srv.port}".encode()
        assert request.headers[b"content-length"] == b"7"
        assert request.headers[b"authorization"] == b"Bearer k"
        await pool.aclose()


@pytest.mark.asyncio
async def test_chunked_body_is_streamed_as_it_arrives() -> None:
    go_on = asyncio.Event()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"6\r\ndata: \r\n")
        await go_on.wait()  # only after the client saw the first piece
        writer.write(b"3\r\nabc\r\n" + b"2\r\n\n\n\r\n0\r\n\r\n")
        await echo_forever(reader, writer, srv)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv)
        chunks = aiter(response.iter_chunks())
        assert await anext(chunks) == b"data: "
        go_on.set()
        rest = [chunk async for chunk in chunks]
        assert b"".join(rest) == b"abc\n\n"
        assert pool.stats(srv.origin).idle == 1  # consumed fully: back in the pool
        assert await (await call(pool, srv, b"x")).read() == b"echo:x"
        assert srv.connections == 1
        await pool.aclose()


@pytest.mark.asyncio
async def test_bodiless_responses_head_204_304_and_interim_100() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        while (request := await srv.read_request(reader)) is not None:
            if request.line.startswith(b"HEAD"):  # announces a length it does not send
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            elif request.body == b"204":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif request.body == b"304":
                writer.write(b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b"final", 201))

    async with Server(handler) as srv:
        pool = UpstreamPool()
        head = await call(pool, srv, b"", method="HEAD", path="/v1/models")
        assert (head.status, head.headers["content-length"]) == (200, "1000")
        assert await head.read() == b""
        for code in (204, 304):
            response = await call(pool, srv, str(code).encode())
            assert response.status == code
            assert await response.read() == b""
        response = await call(pool, srv, b"interim")
        assert (response.status, await response.read()) == (201, b"final")
        assert srv.connections == 1  # all on one kept-alive connection
        await pool.aclose()


@pytest.mark.asyncio
async def test_connection_close_and_eof_delimited_bodies_are_not_reused() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        request = await srv.read_request(reader)
        assert request is not None
        if request.body == b"close":
            writer.write(reply(b"bye", extra=b"connection: close\r\n"))
        else:  # no length, no chunking: the body is everything up to EOF
            writer.write(b"HTTP/1.1 200 OK\r\n\r\npart1,")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"part2")
        await writer.drain()

    async with Server(handler) as srv:
        pool = UpstreamPool()
        assert await (await call(pool, srv, b"close")).read() == b"bye"
        assert await (await call(pool, srv, b"eof")).read() == b"part1,part2"
        assert srv.connections == 2
        await asyncio.sleep(0.01)
        assert pool.stats(srv.origin).connections == 0
        await pool.aclose()


@pytest.mark.asyncio
async def test_redirects_are_returned_not_followed() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        while await srv.read_request(reader) is not None:
            writer.write(reply(b"", 302, b"location: http://169.254.169.254/\r\n"))

    async with Server(handler) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv)
        assert response.status == 302
        assert response.headers["location"] == "http://169.254.169.254/"
        assert len(srv.requests) == 1
        await pool.aclose()


# ------------------------------------------------------------------ keep-alive and retries ----
@pytest.mark.asyncio
async def test_keep_alive_uses_one_connection_for_sequential_requests() -> None:
    async with Server(echo_forever) as srv:
        pool = UpstreamPool()
        for i in range(50):
            assert await (await call(pool, srv, b"%d" % i)).read() == b"echo:%d" % i
        assert srv.connections == 1
        assert pool.stats(srv.origin).idle == 1
        await pool.aclose()


@pytest.mark.asyncio
async def test_idle_connection_closed_by_server_is_discarded() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(reply(b"once"))  # keep-alive response, then the server closes anyway
        await writer.drain()

    async with Server(handler) as srv:
        pool = UpstreamPool()
        assert await (await call(pool, srv)).read() == b"once"
        await asyncio.sleep(0.05)
        assert pool.stats(srv.origin) == pool.stats(srv.origin).__class__(0, 0, 0)
        assert await (await call(pool, srv)).read() == b"once"
        assert srv.connections == 2
        await pool.aclose()


@pytest.mark.asyncio
async def test_stale_keep_alive_race_is_retried_once_on_a_fresh_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(reply(b"first"))
        await srv.read_request(reader)  # the second request on this connection: hang up
        # (as a server does whose idle timeout fired just as the request was in flight)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        assert await (await call(pool, srv)).read() == b"first"
        assert await (await call(pool, srv, b"again")).read() == b"first"
        assert srv.connections == 2
        assert len(srv.requests) == 3  # first, lost retry, retried on the fresh connection
        await pool.aclose()


@pytest.mark.asyncio
async def test_no_retry_once_response_bytes_arrived_or_on_a_fresh_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        request = await srv.read_request(reader)
        assert request is not None
        if request.body == b"partial":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-le")  # then hang up mid-head
        await writer.drain()

    async with Server(handler) as srv:
        pool = UpstreamPool()
        with pytest.raises(ProtocolError, match="before responding"):
            await call(pool, srv, b"nothing")  # a fresh connection is never retried
        with pytest.raises(ProtocolError, match="mid-response"):
            await call(pool, srv, b"partial")
        assert len(srv.requests) == 2
        await pool.aclose()


# ------------------------------------------------------------------ errors and timeouts -------
@pytest.mark.asyncio
async def test_connection_refused_is_connect_error() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = UpstreamPool()
    origin = Origin.parse(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectError) as raised:
        await pool.request(origin, "GET", "/", (), b"", **TIMEOUTS)
    assert not isinstance(raised.value, ConnectTimeout)
    assert pool.stats(origin).connections == 0
    await pool.aclose()


@pytest.mark.asyncio
async def test_server_that_never_answers_is_read_timeout() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        await asyncio.sleep(30)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            await call(pool, srv, read_timeout_s=0.2)
        assert 0.19 <= time.monotonic() - started < 1.0
        assert pool.stats(srv.origin).connections == 0
        await pool.aclose()


@pytest.mark.asyncio
async def test_slow_gap_in_body_is_read_timeout() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await asyncio.sleep(30)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv, read_timeout_s=0.2)
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            await response.read()
        assert 0.19 <= time.monotonic() - started < 1.0
        assert pool.stats(srv.origin).connections == 0
        await pool.aclose()


@pytest.mark.asyncio
async def test_connection_closed_mid_body_is_protocol_error() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
        await writer.drain()
        await asyncio.sleep(0.02)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv)
        with pytest.raises(ProtocolError, match="mid-response"):
            async for _ in response.iter_chunks():
                pass
        assert pool.stats(srv.origin).connections == 0
        await pool.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
    ],
)
async def test_malformed_response_is_protocol_error(answer: bytes) -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(answer)
        await asyncio.sleep(1)

    async with Server(handler) as srv:
        pool = UpstreamPool()
        with pytest.raises(ProtocolError, match="malformed"):
            await call(pool, srv)
        assert pool.stats(srv.origin).connections == 0
        await pool.aclose()


@pytest.mark.asyncio
async def test_every_error_is_an_upstream_error() -> None:
    for error in (ConnectError, ConnectTimeout, ReadTimeout, ProtocolError):
        assert issubclass(error, UpstreamError)
    assert issubclass(ConnectTimeout, ConnectError)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/x", [("x-a", "1\r\nx-injected: 1")]),
        ("POST", "/v1/x", [("x-a\n", "1")]),
        ("POST", "/v1/x HTTP/1.0", []),
        ("POST", "v1/x", []),
        ("PO ST", "/v1/x", []),
        ("POST", "/v1/x", [("Content-Length", "5")]),
        ("POST", "/v1/x", (("HOST", "evil"),)),
    ],
)
async def test_request_that_could_split_the_head_is_refused(
    method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    async with Server(echo_forever) as srv:
        pool = UpstreamPool()
        with pytest.raises(ValueError):
            await pool.request(srv.origin, method, path, headers, b"", **TIMEOUTS)
        assert srv.connections == 0
        await pool.aclose()


# ------------------------------------------------------------------ pool bound, cancellation --
@pytest.mark.asyncio
async def test_200_concurrent_requests_share_10_connections() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        while (request := await srv.read_request(reader)) is not None:
            await asyncio.sleep(0.001)
            writer.write(reply(b"echo:" + request.body))

    async with Server(handler) as srv:
        pool = UpstreamPool(max_connections_per_origin=10)

        async def one(i: int) -> bytes:
            return await (await call(pool, srv, b"%d" % i)).read()

        results = await asyncio.gather(*(one(i) for i in range(200)))
        assert results == [b"echo:%d" % i for i in range(200)]
        assert srv.connections <= 10
        assert pool.stats(srv.origin).connections <= 10
        await pool.aclose()


@pytest.mark.asyncio
async def test_waiting_for_a_free_connection_times_out_as_connect_timeout() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        await asyncio.sleep(30)

    async with Server(handler) as srv:
        pool = UpstreamPool(max_connections_per_origin=1)
        busy = asyncio.create_task(call(pool, srv, read_timeout_s=5))
        await asyncio.sleep(0.05)
        assert pool.stats(srv.origin).connections == 1
        with pytest.raises(ConnectTimeout):
            await call(pool, srv, connect_timeout_s=0.1)
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        assert pool.stats(srv.origin) == pool.stats(srv.origin).__class__(0, 0, 0)
        await pool.aclose()


@pytest.mark.asyncio
async def test_one_targets_hung_calls_never_take_another_targets_connections() -> None:
    """Two targets on one host (two models of one server): partitions have their own bound."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        request = await srv.read_request(reader)
        if request is not None and request.body == b"hang":
            await asyncio.sleep(30)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await srv.read_request(reader)

    async with Server(handler) as srv:
        pool = UpstreamPool(max_connections_per_origin=1)
        hung_target = replace(srv.origin, partition="primary")
        other_target = replace(srv.origin, partition="secondary")
        hung = asyncio.create_task(
            pool.request(hung_target, "POST", "/v1/x", (), b"hang", **TIMEOUTS)
        )
        await asyncio.sleep(0.05)
        assert pool.stats(hung_target).connections == 1
        response = await pool.request(other_target, "POST", "/v1/x", (), b"{}", **TIMEOUTS)
        assert response.status == 200 and await response.read() == b"ok"
        with pytest.raises(ConnectTimeout):  # the hung target's own bound still holds
            await pool.request(
                hung_target, "POST", "/v1/x", (), b"{}", connect_timeout_s=0.1, read_timeout_s=1
            )
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        await pool.aclose()


@pytest.mark.asyncio
async def test_cancellation_closes_the_connection_and_leaks_nothing() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        request = await srv.read_request(reader)
        if request is not None and request.body == b"stream":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await srv.read_request(reader)  # EOF: the client closed the connection

    async with Server(handler) as srv:
        pool = UpstreamPool(max_connections_per_origin=1)
        # 1. cancelled while waiting for the headers
        task = asyncio.create_task(call(pool, srv, b"wait"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # 2. cancelled while waiting for the next body chunk
        response = await call(pool, srv, b"stream")

        async def drain() -> None:
            async for _ in response.iter_chunks():
                pass

        draining = asyncio.create_task(drain())
        await asyncio.sleep(0.05)
        draining.cancel()
        with pytest.raises(asyncio.CancelledError):
            await draining
        # 3. cancelled while queued for a connection at the bound
        response = await call(pool, srv, b"stream")
        queued = asyncio.create_task(call(pool, srv))
        await asyncio.sleep(0.02)
        assert pool.stats(srv.origin).waiting == 1
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        response.close()
        await asyncio.sleep(0.05)
        assert pool.stats(srv.origin) == pool.stats(srv.origin).__class__(0, 0, 0)
        assert srv.closed_by_peer == 3  # every server-side connection saw the client close it
        await pool.aclose()


@pytest.mark.asyncio
async def test_slow_consumer_pauses_reading() -> None:
    size = 8 * 1024 * 1024

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async with Server(handler) as srv:
        pool = UpstreamPool()
        response = await call(pool, srv)
        chunks = aiter(response.iter_chunks())
        total = len(await anext(chunks))
        await asyncio.sleep(0.2)  # a slow consumer: the socket must stop being read
        conn = response._conn
        assert conn is not None and conn.paused
        assert conn.buffered <= HIGH_WATER_BYTES + 512 * 1024
        total += sum([len(chunk) async for chunk in chunks])
        assert total == size
        await pool.aclose()


@pytest.mark.asyncio
async def test_aclose_fails_in_flight_and_later_requests() -> None:
    async with Server(echo_forever) as srv:
        pool = UpstreamPool()
        assert await (await call(pool, srv)).read() == b"echo:{}"
        await pool.aclose()
        with pytest.raises(ConnectError):
            await call(pool, srv)


@pytest.mark.asyncio
async def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    async with Server(echo_forever) as srv:
        pool = UpstreamPool(idle_timeout_s=0.05)
        assert await (await call(pool, srv)).read() == b"echo:{}"
        assert pool.stats(srv.origin).idle == 1
        await asyncio.sleep(0.2)
        assert pool.stats(srv.origin).connections == 0
        assert srv.closed_by_peer == 1
        await pool.aclose()


@pytest.mark.asyncio
async def test_a_dropped_or_closed_half_read_response_frees_its_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        while await srv.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")

    async with Server(handler) as srv:
        pool = UpstreamPool(max_connections_per_origin=1)
        async with await call(pool, srv) as response:
            assert response.status == 200
        response = await call(pool, srv)  # the slot came back
        del response  # dropped without close(): the safety net closes it
        response = await call(pool, srv)
        response.close()
        with pytest.raises(RuntimeError):
            await response.read()
        assert pool.stats(srv.origin).connections == 0
        assert srv.connections == 3
        await pool.aclose()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.asyncio
async def test_https_origin_verifies_the_server_certificate(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with Server(echo_forever, tls=server_tls) as srv:
        pool = UpstreamPool(ssl_context=ssl.create_default_context(cafile=str(cert)))
        for i in range(3):
            assert await (await call(pool, srv, b"%d" % i)).read() == b"echo:%d" % i
        assert srv.connections == 1
        await pool.aclose()
        untrusting = UpstreamPool()  # the default context does not trust a self-signed cert
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await call(untrusting, srv)
        await untrusting.aclose()


# ------------------------------------------------------------------ Origin --------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://api.example.com", Origin("http", "api.example.com", 80, "")),
        ("https://api.openai.com/v1/", Origin("https", "api.openai.com", 443, "/v1")),
        ("HTTPS://Example.COM:8443/openai/v1", Origin("https", "example.com", 8443, "/openai/v1")),
        ("http://127.0.0.1:8000/v1", Origin("http", "127.0.0.1", 8000, "/v1")),
        ("http://[::1]:9000", Origin("http", "::1", 9000, "")),
    ],
)
def test_origin_parse(url: str, expected: Origin) -> None:
    assert Origin.parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "garbage",
        "localhost:8000",
        "",
        "http://",
        "http://:80/v1",
        "http://example.com:99999",
        "http://example.com:0",
        "http://user:pw@example.com",
        "http://example.com/v1?x=1",
        "http://example.com/v 1",
    ],
)
def test_origin_parse_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        Origin.parse(url)


# ------------------------------------------------------------------ properties and uvloop -----
async def _chunked_roundtrip(pieces: list[bytes], splits: list[int]) -> list[bytes]:
    wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked(*pieces)
    cuts = sorted({min(s, len(wire)) for s in splits})

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, srv: Server
    ) -> None:
        for _ in range(2):
            await srv.read_request(reader)
            last = 0
            for cut in [*cuts, len(wire)]:
                writer.write(wire[last:cut])
                await writer.drain()
                last = cut

    async with Server(handler) as srv:
        pool = UpstreamPool()
        streamed = [c async for c in (await call(pool, srv)).iter_chunks()]
        assert await (await call(pool, srv)).read() == b"".join(pieces)
        assert srv.connections == 1
        await pool.aclose()
    return streamed


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    splits=st.lists(st.integers(min_value=1, max_value=3000), max_size=10),
)
def test_chunked_framing_survives_any_split(pieces: list[bytes], splits: list[int]) -> None:
    streamed = asyncio.run(_chunked_roundtrip(pieces, splits))
    assert b"".join(streamed) == b"".join(pieces)
    assert all(streamed)  # never an empty chunk


def test_core_paths_on_uvloop() -> None:
    async def scenario() -> None:
        await test_chunked_body_is_streamed_as_it_arrives()
        await test_stale_keep_alive_race_is_retried_once_on_a_fresh_connection()
        await test_server_that_never_answers_is_read_timeout()
        await test_slow_consumer_pauses_reading()

    uvloop.run(scenario())
