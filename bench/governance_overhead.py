"""What governance adds to a call: admission + budget reserve + settle, through Redis.

    python -m bench.governance_overhead [--requests 3000] [--concurrency 8] [--reps 3]

Starts the simulated provider (no delay) and one gateway as shipped (embedded Valkey, or
``GATEWAY_REDIS_URL``) with two keys that differ only in their quotas:

- ``plain``: no limits (the budget stage passes the call through);
- ``governed``: with ``--quota full`` (default), RPM and TPM windows, token and USD budgets per
  day and per month on the key, and a team budget; with ``--quota typical``, an RPM window and
  a daily token budget on the key, and the team budget. Either way one Lua reserve before the
  upstream call and one settle after it.

Requests alternate between the keys (same body, same connection pool), so both see the same
machine load. For each key it prints the gateway's own overhead (``x-tiergate-overhead-ms``:
time in the gateway minus the upstream's, which includes the reserve round trip) and the
client-side latency, p50 and p99; the difference governed - plain is the figure (target: <=
0.3 ms added p50). The settle runs after the answer is sent, so it shows in CPU, not latency.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import httpx

from bench.stack import Stack, pct, sha

PLAIN_KEY = "tg-bench-plain-0123456789abcdef"
GOVERNED_KEY = "tg-bench-governed-0123456789abcdef"
BODY = {
    "model": "mock",
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    "max_tokens": 16,
}


QUOTAS = {
    # every kind of limit at once: 2 windows and 5 key budgets, plus a team budget
    "full": "{{rpm: {big}, tpm: {big}, budgets: {{tokens_per_day: {big}, "
    "tokens_per_month: {big}, usd_per_day: {big}, usd_per_month: {big}}}}}",
    # what most keys carry: a request rate and a daily token budget, plus the team budget
    "typical": "{{rpm: {big}, budgets: {{tokens_per_day: {big}}}}}",
}


def rules(sim_port: int, quota: str = "full") -> str:
    big = 10**12
    key_quota = QUOTAS[quota].format(big=big)
    return f"""
version: bench-governance
targets:
  m:
    provider: openai
    model: mock
    api_base: "http://127.0.0.1:{sim_port}/v1"
    price: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}
aliases:
  mock: {{targets: [m]}}
keys:
  - {{id: plain, team: free, sha256: {sha(PLAIN_KEY)}}}
  - id: governed
    team: paid
    sha256: {sha(GOVERNED_KEY)}
    quota: {key_quota}
governance:
  teams:
    paid: {{budgets: {{tokens_per_day: {big}}}}}
"""


async def drive(port: int, requests: int, concurrency: int) -> dict[str, dict[str, list[float]]]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    seen: dict[str, dict[str, list[float]]] = {
        k: {"overhead_ms": [], "latency_ms": []} for k in ("plain", "governed")
    }
    counter = iter(range(requests * 2))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            for i in counter:
                name, key = ("plain", PLAIN_KEY) if i % 2 == 0 else ("governed", GOVERNED_KEY)
                t0 = time.perf_counter()
                r = await client.post(url, json=BODY, headers={"authorization": f"Bearer {key}"})
                latency = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status_code}: {r.text[:200]}")
                seen[name]["latency_ms"].append(latency)
                seen[name]["overhead_ms"].append(float(r.headers["x-tiergate-overhead-ms"]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="per key and rep")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quota", choices=sorted(QUOTAS), default="full")
    a = ap.parse_args()
    stack = Stack.start(lambda sim_port: rules(sim_port, a.quota), "tg-gov-bench-")
    gport = stack.port
    try:
        asyncio.run(drive(gport, 200, a.concurrency))  # warm-up: connections, Lua scripts
        reps = []
        for rep in range(a.reps):
            seen = asyncio.run(drive(gport, a.requests, a.concurrency))
            row = {
                name: {
                    f"{m}_{q}": round(pct(v, p), 3)
                    for m, v in measures.items()
                    for q, p in (("p50", 0.5), ("p99", 0.99))
                }
                for name, measures in seen.items()
            }
            row["added"] = {k: round(row["governed"][k] - row["plain"][k], 3) for k in row["plain"]}
            reps.append(row)
            print(f"rep {rep + 1}: {json.dumps(row)}")
    finally:
        stack.stop()
    added = {k: round(statistics.median(r["added"][k] for r in reps), 3) for k in reps[0]["added"]}
    print()
    print("governance (admission + reserve + settle), governed key - plain key, median of reps:")
    print(f"  gateway overhead p50 added: {added['overhead_ms_p50']:.3f} ms (target <= 0.3 ms)")
    print(f"  gateway overhead p99 added: {added['overhead_ms_p99']:.3f} ms")
    print(f"  client latency   p50 added: {added['latency_ms_p50']:.3f} ms")
    print(f"  client latency   p99 added: {added['latency_ms_p99']:.3f} ms")
    state = "redis" if os.environ.get("GATEWAY_REDIS_URL") else "embedded valkey"
    print(json.dumps({"state": state, "quota": a.quota, "requests_per_key": a.requests, **added}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
