"""A simulated provider and one gateway as shipped, for the focused benchmarks.

``Stack.start(rules_for)`` writes the sim's config (no delay, 16-token answers) and the rules
(``rules_for(sim_port)``) into a fresh temporary directory, starts ``tiergate sim`` and
``tiergate serve`` (embedded Valkey, or ``GATEWAY_REDIS_URL``; request log off), and waits until
both answer. ``stop()`` stops both (process groups).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import overhead_procs as op

SIM_CONFIG = "models: {default: {latency_ms: 0, ttft_ms: 0, completion_tokens: 16}}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Stack:
    work: Path
    sim: op.Service
    gateway: op.Service
    port: int  # the gateway's

    @classmethod
    def start(
        cls,
        rules_for: Callable[[int], str],
        prefix: str = "tg-bench-",
        sim_config: str = SIM_CONFIG,
    ) -> Stack:
        work = Path(tempfile.mkdtemp(prefix=prefix))
        sport, gport = free_port(), free_port()
        (work / "sim.yaml").write_text(sim_config)
        (work / "rules.yaml").write_text(rules_for(sport))
        py = sys.executable
        sim = op.Service(
            "sim",
            [py, "-m", "gateway", "sim", "--port", str(sport), "--config", str(work / "sim.yaml")],
            cpus=None,
            env={},
            cwd=work,
            stdout=work / "sim.log",
            stderr=work / "sim.log",
        )
        env = {
            "GATEWAY_RULES": str(work / "rules.yaml"),
            "GATEWAY_PORT": str(gport),
            "GATEWAY_DATA_DIR": str(work / "data"),
            "GATEWAY_REQUEST_LOG": "false",
        }
        if os.environ.get("GATEWAY_REDIS_URL"):
            env["GATEWAY_REDIS_URL"] = os.environ["GATEWAY_REDIS_URL"]
        gateway = op.Service(
            "gateway",
            [py, "-m", "gateway", "serve"],
            cpus=None,
            env=env,
            cwd=work,
            stdout=work / "gateway.log",
            stderr=work / "gateway.log",
        )
        stack = cls(work, sim, gateway, gport)
        try:
            op.wait_ready(sim, sport, "/health", timeout=30)
            op.wait_ready(gateway, gport, "/readyz", timeout=60)
        except BaseException:
            stack.stop()
            raise
        return stack

    def stop(self) -> None:
        self.gateway.stop()
        self.sim.stop()
