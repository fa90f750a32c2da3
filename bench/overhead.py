"""Tiergate's own overhead: throughput, added latency, streaming TTFB, memory and start-up.

    python -m bench.overhead [--delays 0,50] [--duration 8] [--reps 1] [--quick] [--profile]
    make bench-overhead                       # the same, with the defaults

For each upstream delay it starts the simulated provider (``tiergate sim``, pinned to cpu 0 with
the load driver) and the gateway as shipped (``tiergate serve``: auth, validation, metrics and
the JSON request log on, stdout to a log file; pinned to cpu 1; embedded Valkey), then measures:

- start to ready (spawn until ``GET /readyz`` is 200) and idle RSS (gateway and Valkey apart);
- max throughput, closed loop: ``wrk -t1 -c64`` (loadgen's closed loop without wrk), against
  the gateway and against the sim directly;
- open loop at fixed offered rates (loadgen.py: latency from each request's scheduled time):
  p50/p90/p99 direct and through the gateway, the added p50/p99, errors, whether it kept up;
- streaming (``"stream": true``): time to the first body byte (the first ``data:`` event);
- gateway CPU (cores) and peak RSS under load, and the CPU of everything else on the machine
  (``other CPU``: a run with more than 0.1 core there is noisy).

Figures are printed next to the targets, never asserted. The last line printed is one JSON
object; the same object plus every raw run goes to ``bench/results/overhead-<stamp>.json``, the
logs to ``bench/results/overhead-<stamp>/``. The shared harness (``../shared/bench``: loadgen.py,
lua/post.lua) is found there or at ``$TIERGATE_SHARED_BENCH``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import overhead_procs as op
from bench.overhead_profile import render, summarize
from bench.overhead_report import (
    COUNTS,
    NOISY,
    agg,
    diff,
    f,
    read_gateway_log,
    table,
    verdicts,
    versions,
)

REPO = Path(__file__).resolve().parents[1]
KEY = "tg-demo-local-only-0123456789abcdef"
KEY_SHA256 = "0834a7b8c434d0eab84314abc95dd04d5e80d018e057af941749b9d18b525dc5"
CHAT = {
    "model": "mock",
    "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
    "max_tokens": 16,
}
STREAM = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_delay(
    a: argparse.Namespace, delay: float, rd: Path, raw: list[dict[str, Any]]
) -> dict[str, Any]:
    tag = f"d{delay:g}"
    py = sys.executable
    pyenv = {"PYTHONPATH": str(a.src)} if a.src else {}
    sport, gport, oport = free_port(), free_port(), free_port()
    while len({sport, gport, oport}) < 3:  # nothing is bound yet: three distinct ports
        sport, gport, oport = free_port(), free_port(), free_port()
    sim_cfg = rd / f"sim-{tag}.yaml"
    sim_cfg.write_text(
        f"models: {{default: {{latency_ms: {delay:g}, ttft_ms: {delay:g}, "
        "completion_tokens: 16}}\n"
    )
    rules = rd / f"rules-{tag}.yaml"
    rules.write_text(
        "version: bench\n"
        "targets:\n"
        f'  m: {{provider: openai, model: mock, api_base: "http://127.0.0.1:{sport}/v1"}}\n'
        "aliases:\n  mock: {targets: [m]}\n"
        f"keys:\n  - {{id: bench, sha256: {KEY_SHA256}}}\n"
    )
    sim = op.Service(
        "sim",
        [py, "-m", "gateway", "sim", "--port", str(sport), "--config", str(sim_cfg)],
        cpus=a.driver_cpus,
        env=pyenv,
        cwd=rd,
        stdout=rd / f"sim-{tag}.log",
        stderr=rd / f"sim-{tag}.log",
    )
    op.wait_ready(sim, sport, "/health", timeout=30)
    gw_env = {
        **pyenv,
        "GATEWAY_RULES": str(rules),
        "GATEWAY_PORT": str(gport),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_DATA_DIR": str(rd / f"data-{tag}"),
    }
    gw_env.pop("GATEWAY_REDIS_URL", None)
    if os.environ.get("GATEWAY_REDIS_URL"):
        gw_env["GATEWAY_REDIS_URL"] = os.environ["GATEWAY_REDIS_URL"]
    if a.otel:  # tracing on, every request sampled, exported to a sink beside the sim
        sink = op.Service(
            "otlp-sink",
            [py, "-m", "bench.otlp_sink", "--port", str(oport)],
            cpus=a.driver_cpus,
            env=pyenv,
            cwd=REPO,
            stdout=rd / f"otlp-sink-{tag}.log",
            stderr=rd / f"otlp-sink-{tag}.log",
        )
        op.wait_ready(sink, oport, "/", timeout=30)
        gw_env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{oport}",
            OTEL_TRACES_SAMPLER="always_on",
            OTEL_SERVICE_NAME="tiergate-bench",
            GATEWAY_TRACE_STAGES="false" if a.otel_no_stages else "true",
        )
        if a.otel_ratio is not None:
            gw_env.update(
                OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                OTEL_TRACES_SAMPLER_ARG=str(a.otel_ratio),
            )
    gw_log, gw_err = rd / f"gateway-{tag}.log", rd / f"gateway-{tag}.err"
    gw = op.Service(
        "gateway",
        [py, "-m", "gateway", "serve"],
        cpus=a.gateway_cpus,
        env=gw_env,
        cwd=rd,
        stdout=gw_log,
        stderr=gw_err,
    )
    res: dict[str, Any] = {"delay_ms": delay}
    res["start_to_ready_s"] = round(op.wait_ready(gw, gport, "/readyz"), 3)
    hdrs = {"authorization": f"Bearer {KEY}"}
    st, body = op.http_post(gport, "/v1/chat/completions", json.dumps(CHAT).encode(), hdrs)
    res["first_chat_s"] = round(time.perf_counter() - gw.t_spawn, 3)
    if st != 200 or b"choices" not in body:
        raise RuntimeError(f"gateway answered {st}: {body[:300]!r}")
    time.sleep(1.0)
    idle = op.Watch(gw, sim)
    idle.start()
    time.sleep(2.0)
    vk = gw.children("valkey")
    quiet = idle.result()
    res["idle"] = {
        "gateway_rss_mb": op.rss_mb(gw.pid),
        "valkey_rss_mb": round(sum(op.rss_mb(p) or 0.0 for p in vk), 1),
        "valkey_processes": len(vk),
        "gateway_cpu_cores": quiet["gw_cpu_cores"],
        "valkey_cpu_cores": quiet["valkey_cpu_cores"],
        "other_cpu_cores": quiet["other_cpu_cores"],
    }
    bodies = {"chat": rd / "chat.json", "stream": rd / "stream.json"}
    bodies["chat"].write_text(json.dumps(CHAT))
    bodies["stream"].write_text(json.dumps(STREAM))
    ends = {
        "direct": (
            f"http://127.0.0.1:{sport}/v1/chat/completions",
            {"authorization": "Bearer sk-direct"},
        ),
        "gateway": (f"http://127.0.0.1:{gport}/v1/chat/completions", hdrs),
    }
    lg = a.bench_dir / "loadgen.py"
    use_wrk = shutil.which("wrk") is not None and not a.no_wrk

    def one(kind: str, load: str, target: str, rate: float | None, body: Path) -> None:
        url, h = ends[target]
        watch = op.Watch(gw if target == "gateway" else None, sim)
        common = {"body": body, "headers": h, "cpus": a.driver_cpus, "watch": watch}
        if rate is None and use_wrk:
            lua = a.bench_dir / "lua" / "post.lua"
            op.wrk(
                url,
                lua=lua,
                connections=a.connections,
                duration=a.warmup,
                **{**common, "watch": None},
            )
            r = op.wrk(url, lua=lua, connections=a.connections, duration=a.duration, **common)
        else:
            r = op.loadgen(
                url,
                script=lg,
                rate=rate,
                connections=a.connections,
                duration=a.duration,
                warmup=a.warmup,
                python=py,
                **common,
            )
        r.update(delay_ms=delay, kind=kind, load=load, target=target)
        raw.append(r)
        note = " NOISY" if (r.get("other_cpu_cores") or 0) > NOISY else ""
        print(
            f"  {tag} {kind:6} {load:>5} {target:7} rps={r['rps']:8.1f} p50={r['p50_ms']} "
            f"p99={r['p99_ms']} ttfb50={r.get('ttfb_p50_ms')} err={r.get('errors')}/"
            f"{r.get('non2xx')}/{r.get('timeouts')} gwcpu={r.get('gw_cpu_cores')} "
            f"other={r.get('other_cpu_cores')}{note}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(0.5)

    for _ in range(a.reps):
        for target in ("direct", "gateway"):
            one("max", "max", target, None, bodies["chat"])
        for rate in a.rates:
            for target in ("direct", "gateway"):
                one("open", f"{rate:g}", target, rate, bodies["chat"])
        for rate in a.stream_rates:
            for target in ("direct", "gateway"):
                one("stream", f"{rate:g}", target, rate, bodies["stream"])
    mine = [r for r in raw if r["delay_ms"] == delay]

    def cell(kind: str, load: str, target: str) -> dict[str, Any]:
        return agg(
            [r for r in mine if r["kind"] == kind and r["load"] == load and r["target"] == target]
        )

    res["max"] = {t: cell("max", "max", t) for t in ("direct", "gateway")}
    res["open"], res["stream"] = {}, {}
    for rate in a.rates:
        d, g = cell("open", f"{rate:g}", "direct"), cell("open", f"{rate:g}", "gateway")
        fails = sum(g.get(k, 0) for k in COUNTS)
        kept = g["rps"] >= 0.99 * rate and fails == 0 and (g["p99_ms"] or 1e9) < delay + 200
        res["open"][f"{rate:g}"] = {
            "direct": d,
            "gateway": g,
            "added_p50_ms": diff(g["p50_ms"], d["p50_ms"]),
            "added_p90_ms": diff(g["p90_ms"], d["p90_ms"]),
            "added_p99_ms": diff(g["p99_ms"], d["p99_ms"]),
            "kept_up": kept,
        }
    for rate in a.stream_rates:
        d, g = cell("stream", f"{rate:g}", "direct"), cell("stream", f"{rate:g}", "gateway")
        res["stream"][f"{rate:g}"] = {
            "direct": d,
            "gateway": g,
            "ttfb_added_p50_ms": diff(g.get("ttfb_p50_ms"), d.get("ttfb_p50_ms")),
            "ttfb_added_p99_ms": diff(g.get("ttfb_p99_ms"), d.get("ttfb_p99_ms")),
            "added_p50_ms": diff(g["p50_ms"], d["p50_ms"]),
        }
    res["gateway_peak_rss_mb"] = max((r.get("gw_peak_rss_mb") or 0.0) for r in mine)
    res["gateway_vmhwm_mb"] = op.hwm_mb(gw.pid)
    res["gateway_cpu_cores_max_load"] = cores = res["max"]["gateway"].get("gw_cpu_cores")
    # What one whole core would serve at this CPU cost per request: the figure to read when
    # other processes took part of cpu 1 (gateway CPU well under 1.0 at max load).
    rps = res["max"]["gateway"]["rps"]
    res["gateway_rps_per_core"] = round(rps / cores) if cores else None
    res["gateway_cpu_us_per_request"] = round(1e6 * cores / rps) if cores and rps else None
    res["other_cpu_cores_max"] = max((r.get("other_cpu_cores") or 0.0) for r in mine)
    if a.profile and delay == a.delays[0]:
        res["profile"] = profile(a, gw, ends["gateway"], bodies["chat"], rd / f"profile-{tag}.txt")
    gw.stop()
    sim.stop()
    res["gateway_log"] = read_gateway_log(gw_log, gw_err)
    return res


def profile(
    a: argparse.Namespace, gw: op.Service, end: tuple[str, dict[str, str]], body: Path, out: Path
) -> dict[str, Any]:
    """py-spy record -f raw on the gateway during one extra wrk run (not part of the figures)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    d = max(1, round(a.duration))
    p = subprocess.Popen(
        [
            *op.taskset(a.driver_cpus),
            spy,
            "record",
            "-p",
            str(gw.pid),
            "-d",
            str(d),
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)
    r = op.wrk(
        end[0],
        lua=a.bench_dir / "lua" / "post.lua",
        body=body,
        headers=end[1],
        connections=a.connections,
        duration=d,
        cpus=a.driver_cpus,
        watch=None,
    )
    p.wait(d + 30)
    s = summarize(out, 20) if out.exists() else {"samples": 0, "inclusive": [], "self": []}
    print(
        f"\n== py-spy profile of the gateway under wrk -c{a.connections} ({r['rps']:.0f} req/s "
        f"while profiled): {out}\n{render(s)}",
        flush=True,
    )
    return {"file": str(out), "rps_while_profiled": r["rps"], **s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--delays", default="0,50", help="upstream delays in ms (comma list)")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    ap.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of discarded warm-up per run"
    )
    ap.add_argument("--reps", type=int, default=1, help="repetitions (cells are medians)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 s runs, 0.5 s warm-up")
    ap.add_argument("--rates", default="100,500,1000", help="open-loop offered req/s")
    ap.add_argument("--stream-rates", default="25,200", help="streaming offered req/s")
    ap.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    ap.add_argument("--driver-cpus", default="0", help="cpus of the driver and the sim")
    ap.add_argument("--gateway-cpus", default="1", help="cpus of the gateway")
    ap.add_argument("--no-wrk", action="store_true", help="closed loop with loadgen.py, not wrk")
    ap.add_argument("--profile", action="store_true", help="py-spy the gateway under wrk (delay 1)")
    ap.add_argument("--src", type=Path, help="run the gateway from this source tree (PYTHONPATH)")
    ap.add_argument(
        "--otel", action="store_true", help="tracing on (OTLP/HTTP to a sink), every request"
    )
    ap.add_argument("--otel-no-stages", action="store_true", help="with --otel: no per-stage spans")
    ap.add_argument("--otel-ratio", type=float, help="with --otel: sample this share of traces")
    ap.add_argument(
        "--bench-dir",
        type=Path,
        default=Path(os.environ.get("TIERGATE_SHARED_BENCH", REPO.parent / "shared" / "bench")),
        help="the shared harness",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = ap.parse_args(argv)
    if a.quick:
        a.duration, a.warmup = min(a.duration, 2.0), min(a.warmup, 0.5)
    a.delays = [float(x) for x in a.delays.split(",") if x.strip()]
    a.rates = [float(x) for x in a.rates.split(",") if x.strip()]
    a.stream_rates = [float(x) for x in a.stream_rates.split(",") if x.strip()]
    if not (a.bench_dir / "loadgen.py").exists():
        print(
            f"shared harness not found at {a.bench_dir} (set TIERGATE_SHARED_BENCH)",
            file=sys.stderr,
        )
        return 2
    if a.src:
        a.src = a.src.resolve()
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rd = (a.out / f"overhead-{stamp}").resolve()
    rd.mkdir(parents=True, exist_ok=True)
    meta = {
        "versions": versions(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "reps": a.reps,
        "connections": a.connections,
        "driver_cpus": a.driver_cpus,
        "gateway_cpus": a.gateway_cpus,
        "src": str(a.src or REPO),
        "run_dir": str(rd),
    }
    print(f"bench.overhead: {json.dumps(meta['versions'])}\nlogs in {rd}", flush=True)
    results: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    interrupted = False
    try:
        for delay in a.delays:
            res = run_delay(a, delay, rd, raw)
            results.append(res)
            print(table(res, a.reps, a.duration), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping everything started", file=sys.stderr)
    finally:
        op.stop_all()
    summary = {
        "bench": "tiergate-overhead",
        **meta,
        "interrupted": interrupted,
        "targets": verdicts(results),
        "delays": results,
    }
    print("\ntargets (upstream delay 0):")
    for k, v in summary["targets"].items():
        print(f"  {k:<26} {f(v['value']):>9}  {v['verdict']}")
    (a.out / f"overhead-{stamp}.json").write_text(json.dumps({**summary, "runs": raw}, indent=1))
    print(json.dumps(summary, separators=(",", ":")))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
