"""Cost alerts leave the gateway: a request over ``alert_request_usd`` reaches the operator's
webhook (a real HTTP server) as JSON, with no prompt text, and the request is unaffected."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.integration.conftest import KEY, key_hash
from tests.webhook import Receiver

pytestmark = pytest.mark.integration
SECRET_PROMPT = "my card number is 4111 1111 1111 1111"


def test_an_expensive_request_alerts_through_the_webhook(spawn_gateway, sim_port, receiver) -> None:
    rules = f"""
targets:
  ok:
    provider: openai
    model: sim-fast
    api_base: "http://127.0.0.1:{sim_port}/v1"
    price: {{input_usd_per_mtok: 1000, output_usd_per_mtok: 1000}}
aliases:
  fast: {{targets: [ok]}}
keys:
  - {{id: spender, team: t, sha256: {key_hash(KEY)}}}
governance:
  alert_request_usd: 0.001
  alert_webhook_url: "{receiver}"
"""
    gw = spawn_gateway(rules)
    client = openai.OpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": SECRET_PROMPT}]
    )
    assert reply.choices[0].message.content
    deadline = time.monotonic() + 5
    while not Receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Receiver.bodies, "no alert reached the webhook"
    alert = json.loads(Receiver.bodies[0])
    assert alert["kind"] == "request_cost"
    assert alert["details"]["alias"] == "fast"
    assert "4111" not in Receiver.bodies[0].decode()
