"""Rules reload under load: how long a change on disk takes to serve, and what it breaks.

    python -m bench.reload [--rate 200] [--duration 20] [--every 2] [--ttft-ms 100]

Starts the simulated provider and one gateway as shipped (``bench/stack.py``; the rules watcher
at its default period, 1 s), lays its rules file out as a Kubernetes ConfigMap volume does
(``rules.yaml -> ..data/rules.yaml``, ``..data -> ..<version>``), then offers ``--rate``
chat requests per second (open loop over keep-alive connections; each answer ``--ttft-ms``
late, so calls are in flight at every swap) while a new version of the rules replaces
``..data`` every ``--every`` seconds.
Every version keeps the alias the load uses and moves it to another target, so a failed request
is a reload fault, never a config one.

Prints, per swap, the time from the swap to the first answer carrying the new
``x-tiergate-config-version``, and for the run: requests sent, failed (non-200 or transport
error), calls in flight at the swaps, and the achieved rate. Targets: every change served within
2 s, 0 failed requests. Figures are printed, never asserted; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httptools
import uvloop

from bench.stack import Stack, pct, sha

KEY = "tg-bench-reload-0123456789abcdef"


def rules(sim_port: int, version: int, ttft_ms: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    slow = f"headers: {{x-sim-fault: slow-first-token, x-sim-ttft-ms: '{ttft_ms}'}}"
    target = "a" if version % 2 else "b"
    return (
        f"version: v{version}\n"
        "targets:\n"
        f"  a: {{provider: openai, model: sim-a, api_base: '{sim}', {slow}}}\n"
        f"  b: {{provider: openai, model: sim-b, api_base: '{sim}', {slow}}}\n"
        f"aliases:\n  mock: {{targets: [{target}]}}\n"
        f"keys:\n  - {{id: bench, sha256: {sha(KEY)}}}\n"
        "exact_cache: {enabled: false}\n"
    )


class Mount:
    """The kubelet's layout and update of a ConfigMap volume, over the stack's rules file."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.n = 0

    def swap(self, text: str) -> None:
        self.n += 1
        version = self.work / f"..2026_{self.n:04d}"
        version.mkdir()
        (version / "rules.yaml").write_text(text)
        tmp = self.work / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.work / "..data")
        link = self.work / "rules.yaml"
        if not link.is_symlink():  # the first swap turns the plain file into the mount layout
            tmp_link = self.work / "rules.yaml.tmp"
            tmp_link.symlink_to("..data/rules.yaml")
            os.replace(tmp_link, link)


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection (httptools parser: a lean driver, so the load
    generator's own CPU does not decide the figures on a 2-core machine)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, str]] | None = None
        self.version = ""
        self._header = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-tiergate-config-version":
            self.version = value.decode()

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result((self.parser.get_status_code(), self.version))

    async def request(self, raw: bytes) -> tuple[int, str]:
        assert self.transport is not None
        self.version = ""
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.done


async def drive(a: argparse.Namespace, stack: Stack) -> dict[str, object]:
    payload = json.dumps(
        {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    ).encode()
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        + f"authorization: Bearer {KEY}\r\n".encode()
        + b"content-type: application/json\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(a.connections):
        _, conn = await loop.create_connection(Conn, "127.0.0.1", stack.port)
        idle.put_nowait(conn)
    mount = Mount(stack.work)
    argv = [str(x) for x in stack.sim.proc.args]  # type: ignore[union-attr]
    sim_port = int(argv[argv.index("--port") + 1])
    swaps: dict[str, float] = {}  # version -> when its file was swapped in
    first_seen: dict[str, float] = {}
    failures: list[str] = []
    in_flight = 0
    in_flight_at_swaps: list[int] = []
    sent = 0

    async def one() -> None:
        nonlocal in_flight
        conn = await idle.get()
        in_flight += 1
        try:
            status, version = await conn.request(raw)
            if status != 200:
                failures.append(f"HTTP {status}")
            else:
                first_seen.setdefault(version, time.monotonic())
        except ConnectionError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            in_flight -= 1
            if conn.lost:  # replace a dead connection so the pool keeps its size
                _, conn = await loop.create_connection(Conn, "127.0.0.1", stack.port)
            idle.put_nowait(conn)

    async def changer() -> None:
        version = 1
        while True:
            await asyncio.sleep(a.every)
            version += 1
            in_flight_at_swaps.append(in_flight)
            mount.swap(rules(sim_port, version, a.ttft_ms))
            swaps[f"v{version}"] = time.monotonic()

    tasks: set[asyncio.Task[None]] = set()
    change = asyncio.create_task(changer())
    start = time.monotonic()
    interval = 1.0 / a.rate
    while (now := time.monotonic()) < start + a.duration:
        due = start + sent * interval
        if due > now:
            await asyncio.sleep(due - now)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    elapsed = time.monotonic() - start
    change.cancel()
    await asyncio.gather(*tasks)
    effect = {v: round(first_seen[v] - t, 3) for v, t in swaps.items() if v in first_seen}
    unseen = sorted(set(swaps) - set(first_seen))
    return {
        "rate_offered": a.rate,
        "rate_achieved": round(sent / elapsed, 1),
        "requests": sent,
        "failed": len(failures),
        "failures_sample": failures[:5],
        "swaps": len(swaps),
        "in_flight_at_swaps_mean": round(sum(in_flight_at_swaps) / max(1, len(swaps)), 1),
        "time_to_effect_s": effect,
        "time_to_effect_p50_s": round(pct(list(effect.values()), 0.5), 3) if effect else None,
        "time_to_effect_max_s": max(effect.values()) if effect else None,
        "versions_never_served": unseen,  # the last swap may land after the load stopped
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--every", type=float, default=2.0, help="seconds between rules changes")
    ap.add_argument("--connections", type=int, default=128, help="keep-alive connections")
    ap.add_argument("--ttft-ms", type=int, default=100, help="each answer's first-token delay")
    a = ap.parse_args()
    stack = Stack.start(lambda port: rules(port, 1, a.ttft_ms), prefix="tg-bench-reload-")
    try:
        result = uvloop.run(drive(a, stack))
    finally:
        stack.stop()
    for version, seconds in result["time_to_effect_s"].items():  # type: ignore[attr-defined]
        print(f"  {version}: served {seconds:.3f} s after the swap")
    print(
        f"requests {result['requests']} at {result['rate_achieved']}/s (offered {a.rate:g}), "
        f"failed {result['failed']}, swaps {result['swaps']}, "
        f"in flight at a swap {result['in_flight_at_swaps_mean']} on average"
    )
    print(
        f"time to effect: p50 {result['time_to_effect_p50_s']} s, "
        f"max {result['time_to_effect_max_s']} s (target <= 2 s); failed {result['failed']} "
        "(target 0)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
