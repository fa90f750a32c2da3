"""The sim's HTTP/1.1 server: keep-alive, pipelining, pacing, shutdown with hung clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio

from gateway.sim import ModelBehaviour, SimConfig, SimServer, start_sim
from gateway.sim.control import parse_response

CONFIG = SimConfig(
    models={
        "paced": ModelBehaviour(completion_tokens=5, ttft_ms=50, tokens_per_s=100),
        "slow": ModelBehaviour(latency_ms=60),
    }
)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim("127.0.0.1", 0, CONFIG)
    yield server
    await server.close()


def chat_request(model: str, content: str, close: bool = False) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n"
    )
    return (head + body).encode()


@pytest.mark.asyncio
async def test_pipelined_requests_are_answered_in_order(sim: SimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        # The first request waits 60 ms, the second none: order must still hold.
        writer.write(
            chat_request("slow", "one") + chat_request("fast", "two") + b"GET /health HTTP/1.1"
            b"\r\nhost: sim\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()
    parts = raw.split(b"HTTP/1.1 ")[1:]
    assert len(parts) == 3
    models = [json.loads(parse_response(b"HTTP/1.1 " + p).body)["model"] for p in parts[:2]]
    assert models == ["slow", "fast"]
    assert parse_response(b"HTTP/1.1 " + parts[2]).body == b'{"status":"ok"}'


@pytest.mark.asyncio
async def test_keep_alive_serves_many_requests_on_one_connection(sim: SimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    try:
        for index in range(3):
            writer.write(chat_request("fast", f"q{index}"))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            assert json.loads(body)["object"] == "chat.completion"
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.asyncio
async def test_stream_is_paced(sim: SimServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{sim.base_url}/v1", api_key="t", max_retries=0
    ) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(
            model="paced",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        arrivals = [time.monotonic() - started async for chunk in stream if chunk.choices]
    # ttft 50 ms, then 4 more tokens 10 ms apart: lower bounds only, never upper ones.
    assert arrivals[1] >= 0.05
    assert arrivals[-1] >= 0.05 + 4 * 0.01


@pytest.mark.asyncio
async def test_close_cuts_hung_connections() -> None:
    server = await start_sim("127.0.0.1", 0, SimConfig())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}]}'
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\nx-sim-fault: hang\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.close(), timeout=2)
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()


@pytest.mark.asyncio
async def test_garbage_gets_400_and_close(sim: SimServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=2)
    writer.close()
    await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.1 400")


@pytest.mark.asyncio
async def test_close_cancels_delayed_answers() -> None:
    server = await start_sim("127.0.0.1", 0, SimConfig())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}]}'
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\nx-sim-latency-ms: 60000\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(server.close(), timeout=2)
    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()
