"""Micro-benchmark: gateway.targets.upstream.UpstreamPool vs aiohttp against the mock upstream.

Starts ../shared/bench/mock_upstream.py (pinned to cpu 0 with taskset when available), pins
itself to the last cpu, and on uvloop measures POST /v1/chat/completions sequentially and with 64
concurrent callers, for JSON and for SSE streaming answers. Per row: median latency per call,
calls/s, and the client process's CPU time per call (the figure that decides how many requests
one gateway core can relay). Results are printed, not asserted.

    .venv/bin/python bench/upstream_client.py [--calls 4000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.targets.upstream import Origin, UpstreamPool

MOCK = Path(__file__).resolve().parents[1] / "../shared/bench/mock_upstream.py"
BODY_JSON = (
    b'{"model":"mock","messages":[{"role":"user","content":"Say something short, please."}]}'
)
BODY_STREAM = BODY_JSON[:-1] + b',"stream":true,"stream_options":{"include_usage":true}}'
HEADERS = (("content-type", "application/json"), ("authorization", "Bearer sk-bench"))

Call = Callable[[bytes], Awaitable[int]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_mock(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(MOCK.resolve()), "--port", str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mock upstream did not start")


async def run_sequential(call: Call, body: bytes, calls: int) -> tuple[float, float, float]:
    latencies = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        started = time.perf_counter()
        await call(body)
        latencies.append(time.perf_counter() - started)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return statistics.median(latencies) * 1e6, calls / wall, cpu / calls * 1e6


async def run_concurrent(
    call: Call, body: bytes, calls: int, concurrency: int
) -> tuple[float, float, float]:
    latencies: list[float] = []
    left = [calls]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            started = time.perf_counter()
            await call(body)
            latencies.append(time.perf_counter() - started)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return statistics.median(latencies) * 1e6, calls / wall, cpu / calls * 1e6


def tiergate_call(pool: UpstreamPool, origin: Origin) -> Call:
    path = origin.base_path + "/chat/completions"

    async def call(body: bytes) -> int:
        response = await pool.request(
            origin, "POST", path, HEADERS, body, connect_timeout_s=5.0, read_timeout_s=30.0
        )
        size = 0
        async for chunk in response.iter_chunks():
            size += len(chunk)
        return size

    return call


def aiohttp_call(session: aiohttp.ClientSession, url: str) -> Call:
    async def call(body: bytes) -> int:
        async with session.post(url, data=body, headers=dict(HEADERS)) as response:
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
            return size

    return call


async def bench(port: int, calls: int, concurrency: int) -> list[tuple[str, ...]]:
    origin = Origin.parse(f"http://127.0.0.1:{port}/v1")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    pool = UpstreamPool(max_connections_per_origin=concurrency)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    clients = {"UpstreamPool": tiergate_call(pool, origin), "aiohttp": aiohttp_call(session, url)}
    rows: list[tuple[str, ...]] = []
    try:
        for name, call in clients.items():
            for _ in range(300):  # warm up: connections, caches
                await call(BODY_JSON)
            for kind, body in (("json", BODY_JSON), ("sse", BODY_STREAM)):
                seq = await run_sequential(call, body, calls)
                conc = await run_concurrent(call, body, calls * 2, concurrency)
                for mode, (median_us, rate, cpu_us) in (("seq", seq), (f"c{concurrency}", conc)):
                    rows.append(
                        (
                            name,
                            kind,
                            mode,
                            f"{median_us:8.0f}",
                            f"{rate:9.0f}",
                            f"{cpu_us:8.1f}",
                        )
                    )
    finally:
        await session.close()
        await pool.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and cpus > 1:
        os.sched_setaffinity(0, {cpus - 1})
    port = free_port()
    mock = start_mock(port)
    try:
        rows = uvloop.run(bench(port, args.calls, args.concurrency))
    finally:
        mock.terminate()
        mock.wait(5)
    header = ("client", "body", "mode", "median_us", "calls/s", "cpu_us/call")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
