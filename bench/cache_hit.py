"""How fast an exact-cache hit is answered, inside the gateway and at the client.

    python -m bench.cache_hit [--requests 3000] [--reps 3]

Starts the simulated provider and one gateway as shipped (embedded Valkey, or
``GATEWAY_REDIS_URL``), answers one deterministic request (``temperature: 0``) so it is stored,
then asks it again ``--requests`` times, one at a time, JSON and streaming. Prints p50/p99 of the
gateway's own time for a hit (``x-tiergate-overhead-ms``: from the request's arrival to the
response headers, the Redis GET included; a hit has no upstream) and of the client's latency,
next to a miss path (``Cache-Control: no-cache``: the same request answered upstream). Target:
an exact-cache hit answered with p50 <= 0.5 ms inside the gateway. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from bench.stack import Stack, pct, sha

KEY = "tg-bench-cache-0123456789abcdef"
BODY = {
    "model": "mock",
    "temperature": 0,
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 16,
}


def measure(
    port: int, n: int, body: dict[str, object], headers: dict[str, str]
) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    inside, outside = [], []
    outcome = ""
    with httpx.Client(timeout=10) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.post(url, json=body, headers=headers)
            r.read()
            outside.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            inside.append(float(r.headers["x-tiergate-overhead-ms"]))
            outcome = r.headers.get("x-tiergate-cache", "")
    return {
        "cache": outcome,  # type: ignore[dict-item]
        "gateway_p50_ms": round(pct(inside, 0.5), 3),
        "gateway_p99_ms": round(pct(inside, 0.99), 3),
        "client_p50_ms": round(pct(outside, 0.5), 3),
        "client_p99_ms": round(pct(outside, 0.99), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    def rules(sim_port: int) -> str:
        return (
            "version: bench-cache\n"
            "targets:\n"
            f'  m: {{provider: openai, model: mock, api_base: "http://127.0.0.1:{sim_port}/v1"}}\n'
            "aliases:\n  mock: {targets: [m]}\n"
            f"keys:\n  - {{id: bench, sha256: {sha(KEY)}}}\n"
        )

    stack = Stack.start(rules, "tg-cache-bench-")
    gport = stack.port
    auth = {"authorization": f"Bearer {KEY}"}
    stream = {**BODY, "stream": True}
    rows: dict[str, list[dict[str, float]]] = {"hit": [], "hit_stream": [], "miss": []}
    try:
        measure(gport, 300, BODY, auth)  # the first stores the answer; then warm up
        measure(gport, 100, BODY, {**auth, "cache-control": "no-cache"})
        for rep in range(a.reps):
            rows["hit"].append(measure(gport, a.requests, BODY, auth))
            rows["hit_stream"].append(measure(gport, a.requests // 3, stream, auth))
            rows["miss"].append(
                measure(gport, a.requests // 3, BODY, {**auth, "cache-control": "no-cache"})
            )
            print(f"rep {rep + 1}: " + json.dumps({k: v[-1] for k, v in rows.items()}))
    finally:
        stack.stop()
    summary = {
        kind: {
            m: round(statistics.median(float(r[m]) for r in reps), 3)
            for m in reps[0]
            if m != "cache"
        }
        for kind, reps in rows.items()
    }
    print()
    for kind, figures in summary.items():
        print(f"  {kind:10} " + "  ".join(f"{m} {v:.3f}" for m, v in figures.items()))
    hit = summary["hit"]["gateway_p50_ms"]
    print(f"exact-cache hit inside the gateway: p50 {hit:.3f} ms (target <= 0.5 ms)")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
