"""`tiergate serve --demo` (what `make run` starts): prints the key, answers with it, and takes
its simulated provider down with it when it is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import ROOT, free_port, wait_for_port

pytestmark = pytest.mark.integration
SIM_PORT = 9100


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_the_demo_serves_with_its_key_and_stops_its_sim(tmp_path: Path) -> None:
    if listening(SIM_PORT):
        pytest.skip(f"port {SIM_PORT} is taken (a demo is running on this machine)")
    port = free_port()
    out = tmp_path / "demo.log"
    env = dict(os.environ, GATEWAY_DATA_DIR=str(tmp_path / "data"))
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, timeout_s=60)
        lines = out.read_text().splitlines()
        key = next(line.split("key: ", 1)[1] for line in lines if line.startswith("key: "))
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
        assert listening(SIM_PORT)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while listening(SIM_PORT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(SIM_PORT), "the demo's simulated provider outlived the gateway"
