"""Processes, /proc readings and load drivers for ``bench.overhead``.

Every process this module starts runs in its own session (``start_new_session``) and is stopped
by that process-group id only (``Service.stop``, ``stop_all``), never by name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
NPROC = os.cpu_count() or 1

_STARTED: list[subprocess.Popen[bytes]] = []


# ----------------------------------------------------------------------------- /proc
def cpu_s(pid: int) -> float:
    """utime + stime of one process in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _status_kb(pid: int, key: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def hwm_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def _sid_and_comm(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        comm = s[s.index("(") + 1 : s.rindex(")")]
        return int(s.rsplit(")", 1)[1].split()[3]), comm
    except (OSError, IndexError, ValueError):
        return None


def session_pids(sid: int) -> list[tuple[int, str]]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            sc = _sid_and_comm(int(d))
            if sc and sc[0] == sid:
                out.append((int(d), sc[1]))
    return out


def machine_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / TICK, v[7] / TICK


def taskset(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and NPROC > 1 and shutil.which("taskset") else []


# ----------------------------------------------------------------------------- services
class Service:
    """A started process in its own session; ``stop`` signals only that process group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        cpus: str | None,
        env: dict[str, str],
        cwd: Path,
        stdout: Path,
        stderr: Path,
    ) -> None:
        self.name = name
        e = dict(os.environ)
        e.update(env)
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            self.t_spawn = time.perf_counter()
            self.proc = subprocess.Popen(
                [*taskset(cpus), *argv],
                stdout=out,
                stderr=err,
                env=e,
                cwd=cwd,
                start_new_session=True,
            )
        _STARTED.append(self.proc)
        self.pid = self.proc.pid  # taskset execs: this is the service itself

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self, comm_part: str) -> list[int]:
        return [p for p, c in session_pids(self.pid) if p != self.pid and comm_part in c]

    def stop(self) -> None:
        stop_proc(self.proc)


def stop_proc(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, SIGKILL it after 15 s, then any stray of the session."""
    sid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, signal.SIGKILL)
            proc.wait(5)
    for pid, _ in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc in _STARTED:
        _STARTED.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(_STARTED)):
        stop_proc(proc)


def http_get(port: int, path: str, timeout: float = 0.5) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def http_post(
    port: int, path: str, body: bytes, headers: dict[str, str], timeout: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST", path, body=body, headers={"content-type": "application/json", **headers}
        )
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_ready(svc: Service, port: int, path: str, timeout: float = 60.0) -> float:
    """Seconds from spawn until GET ``path`` answers 200."""
    while time.perf_counter() - svc.t_spawn < timeout:
        if not svc.alive():
            raise RuntimeError(f"{svc.name} exited during start-up (see its log)")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, path) == 200:
                return time.perf_counter() - svc.t_spawn
        time.sleep(0.005)
    raise RuntimeError(f"{svc.name} not ready after {timeout} s")


# ----------------------------------------------------------------------------- drivers
@dataclass
class Watch:
    """CPU and memory of the processes under test while one driver runs."""

    gateway: Service | None
    sim: Service
    gw_peak_rss_mb: float = 0.0
    _t: dict[str, float] = field(default_factory=dict)

    def _cpu(self) -> dict[str, float]:
        gw = self.gateway.pid if self.gateway else None
        vk = self.gateway.children("valkey") if self.gateway else []
        busy, steal = machine_s()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "gw": cpu_s(gw) if gw else 0.0,
            "valkey": sum(cpu_s(p) for p in vk),
            "sim": cpu_s(self.sim.pid),
            "driver": ru.ru_utime + ru.ru_stime,
            "busy": busy,
            "steal": steal,
            "wall": time.perf_counter(),
        }

    def start(self) -> None:
        self._t = self._cpu()

    def sample(self) -> None:
        if self.gateway:
            self.gw_peak_rss_mb = max(self.gw_peak_rss_mb, rss_mb(self.gateway.pid) or 0.0)

    def result(self) -> dict[str, float | None]:
        t1 = self._cpu()
        d = {k: t1[k] - self._t[k] for k in t1}
        wall = d.pop("wall")
        ours = d["gw"] + d["valkey"] + d["sim"] + d["driver"]
        return {
            "gw_cpu_cores": round(d["gw"] / wall, 3) if self.gateway else None,
            "valkey_cpu_cores": round(d["valkey"] / wall, 3) if self.gateway else None,
            "sim_cpu_cores": round(d["sim"] / wall, 3),
            "driver_cpu_cores": round(d["driver"] / wall, 3),
            "other_cpu_cores": round(max(0.0, d["busy"] - ours) / wall, 3),
            "steal_cores": round(d["steal"] / wall, 3),
            "gw_peak_rss_mb": self.gw_peak_rss_mb if self.gateway else None,
        }


def run_driver(argv: list[str], env: dict[str, str], watch: Watch | None) -> str:
    """Run one load driver in its own session to the end; sample the watch meanwhile."""
    e = dict(os.environ)
    e.update(env)
    proc = subprocess.Popen(
        argv,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _STARTED.append(proc)
    try:
        if watch is None:
            out, err = proc.communicate()
        else:
            while proc.poll() is None:
                watch.sample()
                time.sleep(0.2)
            out, err = proc.communicate()
    finally:
        stop_proc(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"driver failed ({proc.returncode}): {err.decode()[-800:]}")
    return out.decode()


def wrk(
    url: str,
    *,
    lua: Path,
    body: Path,
    headers: dict[str, str],
    connections: int,
    duration: float,
    cpus: str | None,
    watch: Watch | None,
) -> dict[str, Any]:
    env = {
        "BENCH_BODY": str(body),
        "BENCH_HEADERS": "|".join(f"{k}: {v}" for k, v in headers.items()),
    }
    argv = [
        *taskset(cpus),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]
    if watch:
        watch.start()
    out = run_driver(argv, env, watch)
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no WRKJSON line: {out[-500:]}")
    w = json.loads(line[8:])
    errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
    res: dict[str, Any] = {
        "driver": "wrk",
        "rps": round((w["requests"] - w["err_status"]) / w["duration_s"], 1),
        "p50_ms": w["p50_ms"],
        "p90_ms": w["p90_ms"],
        "p99_ms": w["p99_ms"],
        "max_ms": w["max_ms"],
        "sent": w["requests"],
        "errors": errors,
        "non2xx": w["err_status"],
    }
    if watch:
        res.update(watch.result())
    return res


def loadgen(
    url: str,
    *,
    script: Path,
    body: Path,
    headers: dict[str, str],
    rate: float | None,
    connections: int,
    duration: float,
    warmup: float,
    cpus: str | None,
    python: str,
    watch: Watch | None,
) -> dict[str, Any]:
    mode = ["--rate", str(rate)] if rate else ["--connections", str(connections)]
    hargs = [x for k, v in headers.items() for x in ("-H", f"{k}: {v}")]
    argv = [
        *taskset(cpus),
        python,
        str(script),
        "--url",
        url,
        *mode,
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--body",
        str(body),
        *hargs,
    ]
    if watch:
        watch.start()
    out = run_driver(argv, {}, watch)
    r: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    r["driver"] = "loadgen"
    if watch:
        r.update(watch.result())
    return r
