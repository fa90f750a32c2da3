"""What the translated surfaces add over chat completions, inside the gateway and at the client.

    python -m bench.responses_overhead [--requests 2000] [--reps 3]

Starts the simulated provider (no delay, 16-token answers) and one gateway as shipped (embedded
Valkey, or ``GATEWAY_REDIS_URL``), then sends the same question one request at a time as chat
completions, as Responses API requests (stored, the default, and ``store: false``), as Anthropic
messages and as legacy completions, JSON and streaming. Prints p50/p99 of the gateway's own time
(``x-tiergate-overhead-ms``: arrival to response headers, translation and the stored-response
write included, upstream time excluded) and of the client's latency. Target: the Responses path
adds <= 0.3 ms p50 over chat completions. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import httpx

from bench.stack import Stack, pct, sha

KEY = "tg-bench-surface-0123456789abcdef"
QUESTION = "What is the capital of France?"
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {"model": "mock", "max_tokens": 16, "messages": [{"role": "user", "content": QUESTION}]},
    ),
    "responses": ("/v1/responses", {"model": "mock", "max_output_tokens": 16, "input": QUESTION}),
    "responses_nostore": (
        "/v1/responses",
        {"model": "mock", "max_output_tokens": 16, "input": QUESTION, "store": False},
    ),
    "messages": (
        "/v1/messages",
        {"model": "mock", "max_tokens": 16, "messages": [{"role": "user", "content": QUESTION}]},
    ),
    "completions": ("/v1/completions", {"model": "mock", "max_tokens": 16, "prompt": QUESTION}),
}


def measure(client: httpx.Client, url: str, n: int, body: dict[str, Any]) -> dict[str, float]:
    inside, outside = [], []
    headers = {"authorization": f"Bearer {KEY}"}
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post(url, json=body, headers=headers)
        r.read()
        outside.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        inside.append(float(r.headers["x-tiergate-overhead-ms"]))
    return {
        "gateway_p50_ms": round(pct(inside, 0.5), 3),
        "gateway_p99_ms": round(pct(inside, 0.99), 3),
        "client_p50_ms": round(pct(outside, 0.5), 3),
        "client_p99_ms": round(pct(outside, 0.99), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    def rules(sim_port: int) -> str:
        return (
            "version: bench-surface\n"
            "targets:\n"
            f'  m: {{provider: openai, model: mock, api_base: "http://127.0.0.1:{sim_port}/v1"}}\n'
            "aliases:\n  mock: {targets: [m]}\n"
            f"keys:\n  - {{id: bench, sha256: {sha(KEY)}}}\n"
        )

    stack = Stack.start(rules, "tg-surface-bench-")
    base = f"http://127.0.0.1:{stack.port}"
    cases = dict(CASES)
    for name, (path, body) in CASES.items():
        cases[name + "_stream"] = (path, {**body, "stream": True})
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    try:
        with httpx.Client(timeout=10) as client:
            for path, body in cases.values():
                measure(client, base + path, 200, body)  # warm-up
            for rep in range(a.reps):
                # Interleaved per rep, so a noisy neighbour hits every case alike.
                for name, (path, body) in cases.items():
                    rows[name].append(measure(client, base + path, a.requests, body))
                print(f"rep {rep + 1}: " + json.dumps({k: v[-1] for k, v in rows.items()}))
    finally:
        stack.stop()
    summary = {
        name: {m: round(statistics.median(r[m] for r in reps), 3) for m in reps[0]}
        for name, reps in rows.items()
    }
    print()
    for name, figures in summary.items():
        print(f"  {name:24} " + "  ".join(f"{m} {v:.3f}" for m, v in figures.items()))
    chat = summary["chat"]["gateway_p50_ms"]
    for name in ("responses", "responses_nostore", "messages", "completions"):
        added = summary[name]["gateway_p50_ms"] - chat
        print(f"{name} adds {added:+.3f} ms p50 inside the gateway over chat completions")
    added = summary["responses"]["gateway_p50_ms"] - chat
    print(f"Responses path: {added:+.3f} ms p50 over chat completions (target <= 0.3 ms)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
