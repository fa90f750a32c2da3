"""Real processes for integration tests: the simulated provider and the gateway, over HTTP.

The gateway runs under uvicorn exactly as ``tiergate serve`` runs it, with state in an embedded
Valkey (or the Redis at ``REDIS_URL`` when set). Faulty targets are plain rules: a target whose
static headers ask the simulator for a fault, or whose api_base has nothing listening.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "tg-test-key-integration"
LIMITED_KEY = "tg-test-key-limited"
OTHER_TEAM_KEY = "tg-test-key-other-team"
ADMIN_KEY = "tg-test-admin-key"


SDK_CLIENTS: dict[tuple[str, str, float], openai.OpenAI] = {}


def sdk_client(base_url: str, key: str, timeout: float = 30.0) -> openai.OpenAI:
    """The OpenAI SDK client of one gateway and key, made once and closed when the test module
    ends (a client per call leaves sockets for the garbage collector: a ResourceWarning)."""
    client = SDK_CLIENTS.get((base_url, key, timeout))
    if client is None:
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)
        SDK_CLIENTS[base_url, key, timeout] = client
    return client


@pytest.fixture(scope="module", autouse=True)
def close_sdk_clients() -> Iterator[None]:
    yield
    for client in SDK_CLIENTS.values():
        client.close()
    SDK_CLIENTS.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout_s} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Gateway:
    base_url: str  # ends in /v1
    root: str
    key: str
    limited_key: str
    log_path: Path
    sim_url: str
    other_team_key: str = OTHER_TEAM_KEY
    admin_key: str = ADMIN_KEY

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()


def rules_text(sim_port: int, dead_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    limited_hash = hashlib.sha256(LIMITED_KEY.encode()).hexdigest()
    other_hash = hashlib.sha256(OTHER_TEAM_KEY.encode()).hexdigest()
    admin_hash = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    fast = "timeouts: {connect_s: 0.5, first_token_s: 1.0, total_s: 3.0}"
    return f"""
version: itest-1
targets:
  ok:
    provider: openai
    model: sim-fast
    api_base: {sim}
    price: {{input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}}
    {fast}
  smart:
    provider: openai
    model: sim-smart
    api_base: {sim}
    {fast}
  fails-500:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: "500"}}
    {fast}
  fails-429:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: "429", x-sim-retry-after: "2"}}
    {fast}
  hangs:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: hang}}
    {fast}
  malformed:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: malformed}}
    {fast}
  disconnects:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: disconnect}}
    {fast}
  rejects:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: context}}
    {fast}
  nothing-there:
    provider: openai
    model: sim-fast
    api_base: http://127.0.0.1:{dead_port}/v1
    {fast}
  claude:
    provider: litellm
    model: anthropic/sim-claude
    api_base: http://127.0.0.1:{sim_port}
    {fast}
  embedder:
    provider: openai
    model: sim-embed
    api_base: {sim}
  slow-start:
    provider: openai
    model: sim-fast
    api_base: {sim}
    headers: {{x-sim-fault: slow-first-token, x-sim-ttft-ms: "800"}}
    {fast}
  staler:
    provider: openai
    model: sim-stale
    api_base: {sim}
    {fast}
aliases:
  fast: {{targets: [ok]}}
  smart: {{targets: [smart, ok]}}
  after-500: {{targets: [fails-500, ok]}}
  after-429: {{targets: [fails-429, ok]}}
  after-hang: {{targets: [hangs, ok]}}
  after-malformed: {{targets: [malformed, ok]}}
  after-refused: {{targets: [nothing-there, ok]}}
  cut-stream: {{targets: [disconnects, ok]}}
  rejected: {{targets: [rejects, ok]}}
  all-down: {{targets: [fails-500, fails-429, nothing-there]}}
  claude: {{targets: [claude]}}
  embed: {{kind: embeddings, targets: [embedder]}}
  stale-ok: {{targets: [staler], stale_on_failure: true}}
  hedged:
    targets: [slow-start, ok]
    hedge: {{min_delay_s: 0.05, max_delay_s: 0.2}}
keys:
  - {{id: itest, team: qa, sha256: {key_hash}}}
  - {{id: limited, team: qa, sha256: {limited_hash}, aliases: [fast]}}
  - {{id: other, team: other-team, sha256: {other_hash}}}
admin:
  key_sha256: {admin_hash}
limits:
  max_body_bytes: 65536
governance:
  idempotency: {{in_flight: wait, wait_s: 10}}
"""


@pytest.fixture(scope="session")
def sim_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def gateway(sim_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("gateway")
    rules = work / "rules.yaml"
    rules.write_text(rules_text(sim_port, free_port()))
    port = free_port()
    env = dict(os.environ)
    env.update(
        GATEWAY_PORT=str(port),
        GATEWAY_RULES=str(rules),
        GATEWAY_DATA_DIR=str(work / "data"),
    )
    if os.environ.get("REDIS_URL"):
        env["GATEWAY_REDIS_URL"] = os.environ["REDIS_URL"]
    log_path = work / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, timeout_s=60)
        yield Gateway(
            base_url=f"http://127.0.0.1:{port}/v1",
            root=f"http://127.0.0.1:{port}",
            key=KEY,
            limited_key=LIMITED_KEY,
            log_path=log_path,
            sim_url=f"http://127.0.0.1:{sim_port}",
        )
    finally:
        stop(proc)


@dataclass
class Spawned:
    port: int
    proc: subprocess.Popen[bytes]
    key: str = KEY

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture
def spawn_gateway(tmp_path: Path) -> Iterator[object]:
    """Start extra gateways with their own rules: ``spawn_gateway(rules_text) -> Spawned``."""
    started: list[subprocess.Popen[bytes]] = []

    def start(text: str, **env_overrides: str) -> Spawned:
        n = len(started)
        rules = tmp_path / f"rules-{n}.yaml"
        rules.write_text(text)
        port = free_port()
        env = dict(
            os.environ,
            GATEWAY_RULES=str(rules),
            GATEWAY_PORT=str(port),
            GATEWAY_DATA_DIR=str(tmp_path / f"data-{n}"),
            **env_overrides,
        )
        with (tmp_path / f"gateway-{n}.log").open("wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_for_port(port, proc)
        return Spawned(port, proc)

    yield start
    for proc in started:
        stop(proc)


def key_hash(key: str = KEY) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def test_key_hash() -> str:
    return key_hash()


@pytest.fixture
def shared_redis_url(redis_url: str) -> str:
    """A Redis both replicas of a multi-replica test share: REDIS_URL, else the session's
    embedded Valkey (tests/conftest.py)."""
    return redis_url
