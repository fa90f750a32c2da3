"""The zero-configuration demo: a simulated provider beside the gateway, and a local-only key.

``tiergate serve --demo`` (what ``make run`` starts) spawns ``tiergate sim`` as a child process on
the port the demo rules point at, so the gateway works with no API keys and no services
installed. The demo key below is public by design: its hash is in ``routing_rules/default.yaml``
and the gateway listens on 127.0.0.1 only. Replace the ``keys`` section for anything real.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEMO_KEY = "tg-demo-local-only-0123456789abcdef"
DEMO_ADMIN_KEY = "tg-admin-demo-local-only-0123456789abcdef"
SIM_PORT = 9100
SIM_CONFIG = Path("routing_rules/sim.yaml")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the sim's process: get SIGTERM when the gateway dies, however it dies (uvicorn
    re-raises SIGTERM after its shutdown, so the gateway's own clean-up may never run)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_sim(port: int = SIM_PORT, config: Path = SIM_CONFIG) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gateway", "sim", "--port", str(port)]
    if config.exists():
        cmd += ["--config", str(config)]
    if _listening(port):
        raise RuntimeError(
            f"port {port} is already in use (another `tiergate serve --demo`?); stop it first"
        )
    proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent)  # noqa: PLW1509 (start-up only)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulated provider exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"the simulated provider did not listen on port {port} within 10 s")


def stop_sim(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
