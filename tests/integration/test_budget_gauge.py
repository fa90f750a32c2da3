"""The budget fill gauge: after a call charged to a team's daily budget, /metrics reports
tiergate_budget_used_ratio for that budget, read from the ledger in Redis in the background."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import KEY, key_hash

pytestmark = pytest.mark.integration


def budget_fills(base_url: str) -> dict[tuple[str, str, str], float]:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(root + "/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "tiergate_budget_used_ratio":
            for s in family.samples:
                out[(s.labels["scope"], s.labels["unit"], s.labels["period"])] = s.value
    return out


def test_budget_fill_is_exported(spawn_gateway: object, sim_port: int, tmp_path: Path) -> None:
    import time
    import uuid

    sim = f"http://127.0.0.1:{sim_port}/v1"
    team, kid = f"qa-{uuid.uuid4().hex[:8]}", f"k-{uuid.uuid4().hex[:8]}"  # Redis may be shared
    budgets = "{budgets: {usd_per_day: 100.0, tokens_per_month: 1000000}}"
    rules = (
        "targets:\n"
        f"  a: {{provider: openai, model: sim-fast, api_base: '{sim}',"
        " price: {input_usd_per_mtok: 1000, output_usd_per_mtok: 1000}}\n"
        "aliases:\n  fast: {targets: [a]}\n"
        f"keys:\n  - {{id: {kid}, team: {team}, sha256: {key_hash(KEY)},"
        " quota: {budgets: {calls_per_day: 1000}}}\n"
        f"governance:\n  teams:\n    {team}: {budgets}\n"
    )
    gw = spawn_gateway(rules, GATEWAY_BUDGET_GAUGE_S="0.2")  # type: ignore[operator]
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0)
    client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    deadline = time.monotonic() + 15
    fills: dict[tuple[str, str, str], float] = {}
    while time.monotonic() < deadline:
        fills = budget_fills(gw.base_url)
        wanted = ((f"team:{team}", "usd", "day"), (f"key:{kid}", "calls", "day"))
        # A budget lease the replica holds counts as reserved until it is returned (within
        # governance.leases.validity_s + 0.25 s of the call): wait for the settled figure.
        if all(fills.get(w) for w in wanted) and fills[wanted[1]] == pytest.approx(1 / 1000):
            break
        time.sleep(0.1)
    assert set(fills) == {
        (f"team:{team}", "usd", "day"),
        (f"team:{team}", "tokens", "month"),
        (f"key:{kid}", "calls", "day"),
    }
    assert fills[(f"key:{kid}", "calls", "day")] == pytest.approx(1 / 1000)
    assert 0 < fills[(f"team:{team}", "usd", "day")] < 1
    assert 0 < fills[(f"team:{team}", "tokens", "month")] < 1
