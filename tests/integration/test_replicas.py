"""Two gateway processes on one Redis: an ejection on one reaches the other."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration
ADMIN = "tg-test-admin-key"


def rules(sim_port: int, key_hash: str, admin_hash: str, target: str) -> str:
    return f"""
targets:
  {target}: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"}}
aliases:
  fast: {{targets: [{target}]}}
resilience: {{share_breakers: true}}
keys:
  - {{id: k, sha256: {key_hash}}}
admin: {{key_sha256: {admin_hash}}}
"""


def state(port: int, target: str) -> str:
    body = httpx.get(
        f"http://127.0.0.1:{port}/admin/targets", headers={"authorization": f"Bearer {ADMIN}"}
    ).json()
    return next(t["state"] for t in body["targets"] if t["name"] == target)


def test_an_ejection_on_one_replica_reaches_the_other(
    sim_port, spawn_gateway, test_key_hash, shared_redis_url
) -> None:
    import hashlib

    target = f"t-{uuid.uuid4().hex[:8]}"  # a fresh name: no state left by earlier runs
    text = rules(sim_port, test_key_hash, hashlib.sha256(ADMIN.encode()).hexdigest(), target)
    one = spawn_gateway(text, GATEWAY_REDIS_URL=shared_redis_url)
    two = spawn_gateway(text, GATEWAY_REDIS_URL=shared_redis_url)
    assert state(two.port, target) == "closed"
    httpx.post(
        f"http://127.0.0.1:{one.port}/admin/targets/{target}/eject",
        headers={"authorization": f"Bearer {ADMIN}"},
        json={"for_s": 30},
    ).raise_for_status()
    deadline = time.monotonic() + 3
    while state(two.port, target) != "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(two.port, target) == "open"
    httpx.post(
        f"http://127.0.0.1:{one.port}/admin/targets/{target}/restore",
        headers={"authorization": f"Bearer {ADMIN}"},
    ).raise_for_status()
    deadline = time.monotonic() + 3
    while state(two.port, target) != "closed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(two.port, target) == "closed"
