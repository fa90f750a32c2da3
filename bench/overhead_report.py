"""Aggregation, targets and the printed tables of ``bench.overhead``; the gateway log reader."""

from __future__ import annotations

import collections
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench import overhead_procs as op

REPO = Path(__file__).resolve().parents[1]

TARGETS = {  # from the issue; judged at upstream delay 0
    "max_rps": (">=", 2500.0),
    "added_p50_ms_500": ("<=", 0.5),
    "added_p99_ms_500": ("<=", 2.0),
    "added_p99_ms_1000": ("<=", 5.0),
    "stream_ttfb_added_p50_ms": ("<=", 1.0),
    "idle_rss_mb": ("<=", 150.0),
    "start_to_ready_s": ("<=", 2.0),
}
COUNTS = ("errors", "non2xx", "timeouts", "ok_late")
NOISY = 0.1


def agg(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric field over the repetitions; counts summed; worst noise kept."""
    out: dict[str, Any] = {"reps": len(runs), "driver": runs[0].get("driver")}
    keys = {k for r in runs for k, v in r.items() if isinstance(v, int | float)}
    for k in sorted(keys):
        xs = [
            r[k] for r in runs if isinstance(r.get(k), int | float) and not isinstance(r[k], bool)
        ]
        if xs:
            out[k] = sum(xs) if k in COUNTS else round(statistics.median(xs), 3)
    out["other_cpu_cores_max"] = max((r.get("other_cpu_cores") or 0.0) for r in runs)
    return out


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def judge(name: str, value: float | bool | None) -> str:
    op_, limit = TARGETS[name]
    if value is None or isinstance(value, bool):
        return "n/a"
    ok = value >= limit if op_ == ">=" else value <= limit
    return f"target {op_} {limit:g}: {'MET' if ok else 'NOT MET'}"


def versions() -> dict[str, Any]:
    v: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "nproc": op.NPROC,
    }
    with open("/proc/cpuinfo") as f:
        v["cpu"] = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), None)
    for pkg in ("tiergate", "uvicorn", "uvloop", "httptools", "pydantic", "orjson"):
        try:
            v[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            v[pkg] = None
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    git = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    v["commit"] = git.stdout.strip() or None
    if shutil.which("wrk"):
        r = subprocess.run(["wrk", "-v"], check=False, capture_output=True, text=True)
        v["wrk"] = (r.stdout + r.stderr).strip().splitlines()[0]
    return v


def read_gateway_log(stdout: Path, stderr: Path) -> dict[str, Any]:
    """Request-log lines by status and outcome, the gateway's own overhead_ms, odd lines."""
    status: collections.Counter[str] = collections.Counter()
    outcome: collections.Counter[str] = collections.Counter()
    overhead: list[float] = []
    other: list[str] = []
    n_other = 0
    with open(stdout, errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict) or rec.get("event") != "request":
                n_other += 1
                if len(other) < 8:
                    other.append(line.strip()[:200])
                continue
            status[str(rec.get("status"))] += 1
            outcome[str(rec.get("outcome"))] += 1
            if isinstance(rec.get("overhead_ms"), int | float):
                overhead.append(rec["overhead_ms"])
    overhead.sort()
    err_lines = [x.strip()[:200] for x in stderr.read_text(errors="replace").splitlines()]
    bad = [x for x in err_lines if any(w in x for w in ("ERROR", "Traceback", "WARNING"))]

    def q(p: float) -> float | None:
        return overhead[min(len(overhead) - 1, int(p * len(overhead)))] if overhead else None

    return {
        "requests": sum(status.values()),
        "status": dict(status),
        "outcome": dict(outcome),
        "overhead_ms_p50": q(0.5),
        "overhead_ms_p99": q(0.99),
        "overhead_ms_max": overhead[-1] if overhead else None,
        "other_stdout_lines": n_other,
        "other_stdout_sample": other,
        "stderr_error_lines": len(bad),
        "stderr_error_sample": bad[:8],
    }


def f(x: Any, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _cols(label: str, d: dict[str, Any], g: dict[str, Any], pre: str = "") -> str:
    """label | direct rps p50 p90 p99 | gateway rps p50 p90 p99 (pre: "ttfb_" for TTFB rows)."""
    if pre:
        dv = ["", f(d.get(pre + "p50_ms")), "", f(d.get(pre + "p99_ms"))]
        gv = ["", f(g.get(pre + "p50_ms")), "", f(g.get(pre + "p99_ms"))]
    else:
        dv = [f"{d['rps']:.0f}", *(f(d[k]) for k in ("p50_ms", "p90_ms", "p99_ms"))]
        gv = [f"{g['rps']:.0f}", *(f(g[k]) for k in ("p50_ms", "p90_ms", "p99_ms"))]
    return (
        f"{label:<14}|{dv[0]:>11}{dv[1]:>8}{dv[2]:>8}{dv[3]:>8} |"
        f"{gv[0]:>9}{gv[1]:>8}{gv[2]:>8}{gv[3]:>8} |"
    )


def table(res: dict[str, Any], reps: int, duration: float) -> str:
    d0 = res["delay_ms"] == 0
    idle = res["idle"]
    ready = res["start_to_ready_s"]
    lines = [
        f"\n== upstream delay {res['delay_ms']:g} ms (sim + driver on cpu 0, gateway on cpu 1;"
        f" median of {reps} rep(s) of {duration:g} s)",
        f"start to ready {ready:.2f} s ({judge('start_to_ready_s', ready)});"
        f" first chat 200 at {res['first_chat_s']:.2f} s",
        f"idle RSS: gateway {idle['gateway_rss_mb']} MB"
        f" ({judge('idle_rss_mb', idle['gateway_rss_mb'])}), valkey {idle['valkey_rss_mb']} MB;"
        f" idle CPU: gateway {idle['gateway_cpu_cores']}, valkey {idle['valkey_cpu_cores']},"
        f" other {idle['other_cpu_cores']} cores",
    ]
    hdr = (
        f"{'load':<14}|{'direct rps':>11}{'p50':>8}{'p90':>8}{'p99':>8} |{'gw rps':>9}"
        f"{'p50':>8}{'p90':>8}{'p99':>8} |{'+p50':>7}{'+p99':>8} |{'err':>5} |{'gw CPU':>7} |"
        f"{'other':>6} | target"
    )
    lines += [hdr, "-" * len(hdr)]

    def row(label: str, d: dict[str, Any], g: dict[str, Any], a50: Any, a99: Any, tgt: str) -> None:
        err = sum(g.get(k, 0) for k in COUNTS)
        other = max(d.get("other_cpu_cores_max", 0), g.get("other_cpu_cores_max", 0))
        noisy = " NOISY" if other > NOISY else ""
        lines.append(
            _cols(label, d, g) + f"{f(a50):>7}{f(a99):>8} |{err:>5} |"
            f"{f(g.get('gw_cpu_cores')):>7} |{f(other):>6}{noisy} | {tgt}"
        )

    m = res["max"]
    md, mg = m["direct"], m["gateway"]
    tgt = f"gw rps {judge('max_rps', mg['rps'])}" if d0 else ""
    a50, a99 = diff(mg["p50_ms"], md["p50_ms"]), diff(mg["p99_ms"], md["p99_ms"])
    row(f"max c=64 {mg['driver']}", md, mg, a50, a99, tgt)
    for rate, o in res["open"].items():
        tgt = "kept up" if o["kept_up"] else "DID NOT KEEP UP"
        if rate == "500":
            tgt += f"; +p50 {judge('added_p50_ms_500', o['added_p50_ms'])}"
            tgt += f"; +p99 {judge('added_p99_ms_500', o['added_p99_ms'])}"
        if rate == "1000":
            tgt += f"; +p99 {judge('added_p99_ms_1000', o['added_p99_ms'])}"
        row(f"{rate}/s", o["direct"], o["gateway"], o["added_p50_ms"], o["added_p99_ms"], tgt)
    for rate, s in res["stream"].items():
        d, g = s["direct"], s["gateway"]
        a99 = diff(g["p99_ms"], d["p99_ms"])
        row(f"stream {rate}/s", d, g, s["added_p50_ms"], a99, "(whole stream)")
        t50, t99 = s["ttfb_added_p50_ms"], s["ttfb_added_p99_ms"]
        lines.append(
            _cols("  TTFB", d, g, "ttfb_") + f"{f(t50):>7}{f(t99):>8} |{'':>5} |{'':>7} |{'':>6} |"
            f" TTFB +p50 {judge('stream_ttfb_added_p50_ms', t50)}"
        )
    gl, worst = res["gateway_log"], res["other_cpu_cores_max"]
    lines.append(
        f"gateway under load: peak RSS {res['gateway_peak_rss_mb']} MB"
        f" (VmHWM {res['gateway_vmhwm_mb']} MB), CPU at max load"
        f" {res['gateway_cpu_cores_max_load']} cores ({res.get('gateway_cpu_us_per_request')} µs"
        f" per request = {res.get('gateway_rps_per_core')} req/s per full core);"
        f" worst other CPU {worst} cores" + (" NOISY" if worst > NOISY else "")
    )
    lines.append(
        f"gateway log: {gl['requests']} requests, status {gl['status']}, outcome {gl['outcome']},"
        f" overhead_ms p50 {gl['overhead_ms_p50']} p99 {gl['overhead_ms_p99']}"
        f" max {gl['overhead_ms_max']}; other stdout lines {gl['other_stdout_lines']},"
        f" stderr errors/warnings {gl['stderr_error_lines']}"
    )
    return "\n".join(lines)


def verdicts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets against the delay-0 figures (start-up: the worst of all delays)."""
    r = next((x for x in results if x["delay_ms"] == 0), None)
    if r is None:
        return {}
    o, s = r["open"], r["stream"]
    ttfb = [x["ttfb_added_p50_ms"] for x in s.values() if x["ttfb_added_p50_ms"] is not None]
    vals: dict[str, Any] = {
        "max_rps": r["max"]["gateway"]["rps"],
        "added_p50_ms_500": o.get("500", {}).get("added_p50_ms"),
        "added_p99_ms_500": o.get("500", {}).get("added_p99_ms"),
        "added_p99_ms_1000": o.get("1000", {}).get("added_p99_ms"),
        "stream_ttfb_added_p50_ms": max(ttfb) if ttfb else None,
        "idle_rss_mb": r["idle"]["gateway_rss_mb"],
        "start_to_ready_s": max(x["start_to_ready_s"] for x in results),
    }
    out = {
        k: {"value": v, "target": f"{TARGETS[k][0]} {TARGETS[k][1]:g}", "verdict": judge(k, v)}
        for k, v in vals.items()
    }
    if "1000" in o and not o["1000"]["kept_up"]:
        out["added_p99_ms_1000"]["verdict"] = "NOT MET: did not keep up with 1000/s"
    cores = r["max"]["gateway"].get("gw_cpu_cores") or 0.0
    if cores and cores < 0.9:  # the gateway did not get its whole core: say what a core gives
        out["max_rps"]["verdict"] += (
            f" (gateway got only {cores:g} core; {r.get('gateway_rps_per_core')} req/s per full"
            " core at the measured CPU cost)"
        )
    return out
