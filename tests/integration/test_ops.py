"""Health, readiness, metrics, the request log, the Anthropic path and config validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SECRET_PROMPT = "my secret prompt text 42"


def test_health_and_readiness(gateway) -> None:
    assert httpx.get(f"{gateway.root}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.root}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"config": True, "state_store": True}


def test_request_log_has_the_fields_and_no_prompt_text(gateway) -> None:
    c = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    c.chat.completions.create(
        model="fast",
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        extra_headers={"x-request-id": "log-check-1"},
    )
    mine: list[dict[str, object]] = []
    deadline = time.monotonic() + 5  # the log line leaves at the end of the gateway's loop turn
    while not mine and time.monotonic() < deadline:
        lines = [json.loads(x) for x in gateway.log_lines() if x.startswith("{")]
        mine = [x for x in lines if x.get("request_id") == "log-check-1"]
        time.sleep(0.02)
    assert len(mine) == 1
    line = mine[0]
    for field in (
        "key_id",
        "alias",
        "model",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "latency_ms",
        "attempts",
        "outcome",
    ):
        assert field in line
    assert line["key_id"] == "itest" and line["outcome"] == "ok" and line["cost_usd"] > 0
    assert SECRET_PROMPT not in gateway.log_path.read_text()


def test_metrics(gateway) -> None:
    c = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    c.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    list(
        c.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    text = httpx.get(f"{gateway.root}/metrics").text
    for name in (
        "tiergate_requests_total",
        "tiergate_request_latency_seconds_bucket",
        "tiergate_time_to_first_token_seconds_bucket",
        "tiergate_tokens_total",
        "tiergate_gateway_overhead_seconds_bucket",
        "tiergate_queue_waiting 0.0",
        "tiergate_cache_total",
    ):
        assert name in text, name
    assert 'target="ok"' in text


def test_anthropic_messages_through_litellm(gateway) -> None:
    c = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0, timeout=30)
    out = c.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hello"}], max_tokens=20
    )
    assert out.choices[0].message.content
    assert out.usage.completion_tokens > 0
    chunks = list(
        c.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert any(ch.usage and ch.usage.completion_tokens for ch in chunks)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_check_config_reports_dotted_paths(tmp_path) -> None:
    ok = run_cli("check-config", "routing_rules/default.yaml")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "targets:\n  a: {provider: openai, model: m, api_base: 'http://x/v1'}\n"
        "aliases:\n  fast: {targets: [a, sonet]}\n"
    )
    result = run_cli("check-config", str(bad))
    assert result.returncode == 1
    assert "aliases.fast.targets[1]: unknown target 'sonet'" in result.stderr


def test_server_refuses_to_start_on_invalid_config(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: {}\naliases: {}\n")
    env = dict(os.environ, GATEWAY_RULES=str(bad), GATEWAY_PORT="0", GATEWAY_DATA_DIR=str(tmp_path))
    result = run_cli("serve", env=env)
    assert result.returncode != 0
    assert "targets" in result.stderr


def test_sighup_reloads_rules_and_rejects_a_bad_file(
    tmp_path, sim_port, spawn_gateway, test_key_hash
) -> None:
    import signal
    import time

    base = (
        "targets:\n"
        f"  a: {{provider: openai, model: sim-fast, api_base: 'http://127.0.0.1:{sim_port}/v1'}}\n"
        "aliases:\n  one: {targets: [a]}\n"
        f"keys:\n  - {{id: k, sha256: {test_key_hash}}}\n"
    )
    gw = spawn_gateway(base)
    rules = tmp_path / "rules-0.yaml"
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)

    def aliases() -> set[str]:
        return {m.id for m in client.models.list()}

    assert aliases() == {"one"}
    rules.write_text(base.replace("aliases:\n", "aliases:\n  two: {targets: [a]}\n"))
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while aliases() != {"one", "two"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert aliases() == {"one", "two"}
    assert client.chat.completions.create(model="two", messages=[{"role": "user", "content": "x"}])

    rules.write_text("targets: {}\n")  # invalid: rejected, the running config stays
    gw.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert aliases() == {"one", "two"}
    assert gw.proc.poll() is None
