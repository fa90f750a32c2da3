"""CPU per call of the full governance path, gateway + its embedded Valkey together.

    python -m bench.governance_cpu [--requests 6000] [--concurrency 32] [--reps 3]
        [--modes leases,exact]

Why CPU time and not req/s: on a machine shared with other work, wall-clock throughput and
latency measure the scheduler as much as the gateway. CPU seconds spent by the gateway's process
session (the gateway and the Valkey server it started) per call are much less sensitive to
other load, and 1 / (CPU per call) is the most calls one core could serve. The shared harness
(``../shared/bench``, ``bench/shared_target.py --governance``) gives the wall-clock figure on a
quiet machine.

Starts the simulated provider (no delay) and one gateway as shipped (request log off, as in
``bench.governance_overhead``) with two keys: ``plain`` (no limits) and ``governed`` (RPM, TPM,
daily token and monthly USD budgets on the key, a team budget and a global RPM quota, all far
above what a run reaches). Runs the keys one after the other (``--requests`` each), measuring the
session's CPU time around each run. Prints per key: CPU microseconds per call and calls per
core-second, and the governed - plain difference; the last line is one JSON object.

``--modes``: ``leases`` runs the gateway as shipped (budgets and windows spent from per-replica
leases, ``gateway/governance/leases.py``), ``exact`` with ``governance.leases.enabled: false``
(one coalesced ``reserve.lua`` call and a batched settle per call). Each mode starts its own
stack, one after the other in the same run, so the modes are compared under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import httpx

from bench import overhead_procs as op
from bench.stack import Stack, sha

PLAIN_KEY = "tg-bench-plain-0123456789abcdef"
GOVERNED_KEY = "tg-bench-governed-0123456789abcdef"
BODY = {
    "model": "mock",
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    "max_tokens": 16,
}
BIG = 10**12


def rules(sim_port: int, leases: bool = True) -> str:
    return f"""
version: bench-governance-cpu
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
    quota: {{rpm: {BIG}, tpm: {BIG}, budgets: {{tokens_per_day: {BIG}, usd_per_month: {BIG}}}}}
governance:
  teams:
    paid: {{budgets: {{usd_per_day: {BIG}}}}}
  global_quota: {{rpm: {BIG}}}
  leases: {{enabled: {str(leases).lower()}}}
"""


def session_cpu_s(sid: int) -> float:
    return sum(op.cpu_s(pid) for pid, _ in op.session_pids(sid))


async def drive(port: int, key: str, requests: int, concurrency: int) -> float:
    """Send ``requests`` calls; returns the wall-clock seconds they took."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            for _ in counter:
                r = await client.post(url, json=BODY, headers={"authorization": f"Bearer {key}"})
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=6000, help="per key and rep")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--modes", default="leases,exact", help="leases, exact, or both")
    a = ap.parse_args()
    out: dict[str, float] = {}
    for mode in a.modes.split(","):
        med, paired = measure(mode, a.requests, a.concurrency, a.reps)
        print()
        for name in ("plain", "governed"):
            print(
                f"{mode:6s} {name:9s} {med[name]:6.0f} us CPU per call (gateway + Valkey) "
                f"= {1e6 / med[name]:,.0f} calls per core-second"
            )
        print(
            f"{mode:6s} governance adds {med['governed'] - med['plain']:.0f} us CPU per call "
            f"(median of the reps' own differences: {paired:.0f} us)\n"
        )
        out |= {
            f"{mode}_plain_us_per_call": round(med["plain"], 1),
            f"{mode}_governed_us_per_call": round(med["governed"], 1),
            f"{mode}_governed_calls_per_core_s": round(1e6 / med["governed"]),
            f"{mode}_adds_paired_us": round(paired, 1),
        }
    out["loadavg_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))
    return 0


def measure(
    mode: str, requests: int, concurrency: int, reps: int
) -> tuple[dict[str, float], float]:
    """Median CPU microseconds per call, per key, with one gateway in this mode; and the median
    of each rep's governed - plain (the pair ran back to back: less sensitive to load drift)."""
    stack = Stack.start(lambda port: rules(port, leases=mode == "leases"), "tg-gov-cpu-")
    sid = stack.gateway.pid  # started in its own session: the gateway and its Valkey
    per_call: dict[str, list[float]] = {"plain": [], "governed": []}
    try:
        for key in (PLAIN_KEY, GOVERNED_KEY):  # warm-up: connections, scripts, caches
            asyncio.run(drive(stack.port, key, 300, concurrency))
        for rep in range(reps):
            for name, key in (("plain", PLAIN_KEY), ("governed", GOVERNED_KEY)):
                before = session_cpu_s(sid)
                wall = asyncio.run(drive(stack.port, key, requests, concurrency))
                used = session_cpu_s(sid) - before
                per_call[name].append(used / requests * 1e6)
                print(
                    f"{mode} rep {rep + 1} {name}: {used / requests * 1e6:.0f} us CPU/call, "
                    f"{requests / wall:.0f} calls/s wall-clock (load {os.getloadavg()[0]:.1f})"
                )
    finally:
        stack.stop()
    pairs = [g - p for p, g in zip(per_call["plain"], per_call["governed"], strict=True)]
    return {k: statistics.median(v) for k, v in per_call.items()}, statistics.median(pairs)


if __name__ == "__main__":
    raise SystemExit(main())
