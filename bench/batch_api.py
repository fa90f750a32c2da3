"""The Batch API on a live gateway: a 1,000-line batch, and interactive latency beside it.

    python -m bench.batch_api [--lines 1000] [--rate 10] [--latency-ms 100] [--concurrency 4]
                              [--rpm N] [--headroom 0.2] [--burst N]

Starts the simulated provider (every answer takes ``--latency-ms``) and one gateway as shipped
(embedded Valkey, or ``GATEWAY_REDIS_URL``; ``GATEWAY_BATCH_CONCURRENCY=--concurrency``,
``GATEWAY_BATCH_HEADROOM=--headroom``; with ``--rpm`` the target has that RPM limit, so the batch
and the interactive calls compete for it; ``--burst N`` adds N interactive calls at once every
10 s, the traffic a reserved headroom is for). Then:

1. Interactive alone: chat calls at ``--rate`` per second (open loop, each prompt unique so the
   exact cache never answers) for ``--calls`` calls; p50/p99 latency at the client.
2. The batch: uploads ``--lines`` chat requests with ``client.files.create``, starts them with
   ``client.batches.create``, and runs the same interactive load until the batch is completed
   (only calls sent while it runs).
   Prints the batch's completion time (create -> completed, as the client polls it), its lines
   per second, and the interactive p50/p99 measured while it ran.
3. The output file: downloaded with ``client.files.content`` and every line parsed into the
   SDK's ``ChatCompletion``; every custom_id must be there once.

Last line: one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable

import openai
import orjson
from openai.types.chat import ChatCompletion

from bench.stack import Stack, pct, sha

KEY = "tg-bench-batch-0123456789abcdef"
INTERACTIVE_KEY = "tg-bench-interactive-0123456789"
BURST_EVERY_S = 10.0


def rules_for(rpm: int | None) -> Callable[[int], str]:
    limits = f", limits: {{rpm: {rpm}}}" if rpm else ""
    return lambda sim_port: (
        f"""
version: bench-batch-api
targets:
  sim: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"{limits}}}
aliases:
  fast: {{targets: [sim]}}
keys:
  - {{id: batch-team, team: data, sha256: {sha(KEY)}}}
  - {{id: app-team, team: app, sha256: {sha(INTERACTIVE_KEY)}, priority: interactive}}
"""
    )


def sim_config(latency_ms: int) -> str:
    return (
        f"models: {{default: {{latency_ms: {latency_ms}, ttft_ms: {latency_ms}, "
        "completion_tokens: 16}}\n"
    )


async def one_call(client: openai.AsyncOpenAI, latencies: list[float], errors: list[str]) -> None:
    t0 = time.perf_counter()
    try:
        await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": f"interactive {uuid.uuid4().hex}"}],
            max_tokens=16,
        )
    except openai.APIError as exc:
        errors.append(type(exc).__name__)
        return
    latencies.append((time.perf_counter() - t0) * 1000)


async def interactive(
    client: openai.AsyncOpenAI,
    rate: float,
    calls: int,
    until: asyncio.Event | None,
    burst: int = 0,
) -> tuple[list[float], list[str]]:
    """Open-loop load: one call every 1/rate s, ``calls`` of them (or until ``until`` is set
    and at least ``calls`` were sent); with ``burst``, that many more at once every
    ``BURST_EVERY_S`` (the first after half a period)."""
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    next_burst = BURST_EVERY_S / 2
    async with asyncio.TaskGroup() as group:
        i = 0
        while i < calls or (until is not None and not until.is_set()):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            group.create_task(one_call(client, latencies, errors))
            if burst and time.perf_counter() - started >= next_burst:
                next_burst += BURST_EVERY_S
                for _ in range(burst):
                    group.create_task(one_call(client, latencies, errors))
            i += 1
    return latencies, errors


def summary(latencies: list[float], errors: list[str]) -> dict[str, float | int]:
    return {
        "calls": len(latencies) + len(errors),
        "errors": len(errors),
        "p50_ms": round(pct(latencies, 0.5), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
    }


def batch_file(lines: int) -> bytes:
    rows = (
        {
            "custom_id": f"rec-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "fast",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Classify record {i}."}],
            },
        }
        for i in range(lines)
    )
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


async def run_batch(
    client: openai.AsyncOpenAI, lines: int, done: asyncio.Event
) -> tuple[float, str | None, dict[str, int]]:
    uploaded = await client.files.create(file=("bench.jsonl", batch_file(lines)), purpose="batch")
    t0 = time.perf_counter()
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        await asyncio.sleep(0.2)
        batch = await client.batches.retrieve(batch.id)
    elapsed = time.perf_counter() - t0
    done.set()
    counts = batch.request_counts.model_dump() if batch.request_counts else {}
    if batch.status != "completed":
        raise RuntimeError(f"batch ended {batch.status}: {batch.errors}")
    return elapsed, batch.output_file_id, counts


async def parse_output(client: openai.AsyncOpenAI, file_id: str | None, lines: int) -> int:
    """Every output line parsed with the SDK; returns how many parsed (all ids checked)."""
    assert file_id is not None
    text = (await client.files.content(file_id)).text
    seen: set[str] = set()
    for raw in text.splitlines():
        row = orjson.loads(raw)
        ChatCompletion.model_validate(row["response"]["body"])
        seen.add(row["custom_id"])
    if seen != {f"rec-{i}" for i in range(lines)}:
        raise RuntimeError(f"output has {len(seen)} of {lines} custom_ids")
    return len(seen)


async def measure(port: int, args: argparse.Namespace) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}/v1"
    app = openai.AsyncOpenAI(base_url=base, api_key=INTERACTIVE_KEY, max_retries=0, timeout=30)
    data = openai.AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0, timeout=60)
    await interactive(app, args.rate, 20, None)  # warm-up
    alone = summary(*await interactive(app, args.rate, args.calls, None, args.burst))
    print(f"interactive alone:       {alone}")
    done = asyncio.Event()
    (elapsed, output_id, counts), during = await asyncio.gather(
        run_batch(data, args.lines, done), interactive(app, args.rate, 0, done, args.burst)
    )
    beside = summary(*during)
    print(f"interactive beside batch: {beside}")
    print(
        f"batch: {args.lines} lines completed in {elapsed:.1f} s "
        f"({args.lines / elapsed:.1f} lines/s), counts {counts}"
    )
    parsed = await parse_output(data, output_id, args.lines)
    print(f"output file: {parsed} lines parsed with the SDK's ChatCompletion")
    return {
        "lines": args.lines,
        "batch_s": round(elapsed, 2),
        "lines_per_s": round(args.lines / elapsed, 1),
        "request_counts": counts,
        "output_parsed": parsed,
        "interactive_alone": alone,
        "interactive_beside_batch": beside,
        "rate_per_s": args.rate,
        "sim_latency_ms": args.latency_ms,
        "batch_concurrency": args.concurrency,
        "target_rpm": args.rpm,
        "batch_headroom": args.headroom,
        "burst": args.burst,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=10.0, help="interactive calls per second")
    ap.add_argument("--calls", type=int, default=200, help="interactive calls per phase (min)")
    ap.add_argument("--latency-ms", type=int, default=100, help="the sim's answer time")
    ap.add_argument("--concurrency", type=int, default=4, help="GATEWAY_BATCH_CONCURRENCY")
    ap.add_argument("--rpm", type=int, default=None, help="the target's RPM limit (default none)")
    ap.add_argument(
        "--burst", type=int, default=0, help="extra interactive calls at once, every 10 s"
    )
    ap.add_argument("--headroom", type=float, default=0.2, help="GATEWAY_BATCH_HEADROOM")
    args = ap.parse_args()
    os.environ["GATEWAY_BATCH_CONCURRENCY"] = str(args.concurrency)
    os.environ["GATEWAY_BATCH_HEADROOM"] = str(args.headroom)
    stack = Stack.start(rules_for(args.rpm), "tg-bench-batch-", sim_config(args.latency_ms))
    try:
        figures = asyncio.run(measure(stack.port, args))
    finally:
        stack.stop()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
