"""The admin API: its own credential, target health, manual eject and restore."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration


def admin(gw, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or gw.admin_key}"}
    return httpx.request(method, f"{gw.root}/admin{path}", headers=headers, timeout=5, **kw)


def test_admin_api_needs_the_admin_key(gateway) -> None:
    for key in (gateway.key, "wrong"):
        response = admin(gateway, "GET", "/targets", key=key)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{gateway.root}/admin/targets").status_code == 401


def test_targets_show_state_and_observations(gateway) -> None:
    openai.OpenAI(
        base_url=gateway.base_url, api_key=gateway.key, max_retries=0
    ).chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    body = admin(gateway, "GET", "/targets").json()
    assert body["aliases"]["fast"] == ["ok"]
    ok = next(t for t in body["targets"] if t["name"] == "ok")
    assert ok["state"] == "closed" and ok["calls"] >= 1 and ok["ttft_p50_ms"] is not None
    assert ok["model"] == "sim-fast"


def test_manual_eject_and_restore(gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    ejected = admin(gateway, "POST", "/targets/smart/eject", json={"for_s": 60, "reason": "drain"})
    assert ejected.status_code == 200
    assert ejected.json()["state"] == "open" and "drain" in ejected.json()["reason"]
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-tiergate-target"] == "ok"
    assert raw.headers["x-tiergate-failed"] == "smart:TargetEjected"
    assert admin(gateway, "POST", "/targets/smart/restore").json()["state"] == "closed"
    raw = client.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-tiergate-target"] == "smart"
    assert admin(gateway, "POST", "/targets/nope/eject").status_code == 404


def test_usage_by_key_feature_and_model(gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "count me"}],
            extra_headers={"x-tiergate-feature": "usage-test"},
        )
    rows = admin(gateway, "GET", "/usage", params={"group_by": "key,feature,model"}).json()["data"]
    mine = [r for r in rows if r["feature"] == "usage-test"]
    assert len(mine) == 1
    row = mine[0]
    assert row["key"] == "itest" and row["model"] == "sim-fast"
    assert row["requests"] == 3 and row["tokens_out"] > 0 and row["usd"] > 0
    bad = admin(gateway, "GET", "/usage", params={"group_by": "planet"})
    assert bad.status_code == 400
