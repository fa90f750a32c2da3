"""Virtual keys through the admin API: created hashed, usable at once, revoked within a second."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration


def admin(gw, method: str, path: str, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {gw.admin_key}"}
    return httpx.request(method, f"{gw.root}/admin{path}", headers=headers, timeout=5, **kw)


def test_key_lifecycle(gateway) -> None:
    key_id = f"k{uuid.uuid4().hex[:8]}"
    created = admin(
        gateway, "POST", "/keys", json={"id": key_id, "team": "t1", "aliases": ["fast"]}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert "sha256" not in created.json()
    client = openai.OpenAI(base_url=gateway.base_url, api_key=secret, max_retries=0)
    assert {m.id for m in client.models.list()} == {"fast"}
    assert client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])

    listed = admin(gateway, "GET", "/keys").json()["data"]
    sources = {k["id"]: k["source"] for k in listed}
    assert sources[key_id] == "admin" and sources["itest"] == "config"
    assert admin(gateway, "POST", "/keys", json={"id": key_id}).status_code == 409
    assert admin(gateway, "PATCH", "/keys/itest", json={"team": "x"}).status_code == 409

    rotated = admin(gateway, "POST", f"/keys/{key_id}/rotate").json()["key"]
    assert rotated != secret
    time.sleep(1.1)  # local caches hold a key for at most a second
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    fresh = openai.OpenAI(base_url=gateway.base_url, api_key=rotated, max_retries=0)
    assert fresh.models.list()

    assert admin(gateway, "POST", f"/keys/{key_id}/revoke").json()["revoked"] is True
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError):
        fresh.models.list()


def test_keys_cli_wraps_the_admin_api(gateway) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, TIERGATE_URL=gateway.root, TIERGATE_ADMIN_KEY=gateway.admin_key)
    key_id = f"cli{uuid.uuid4().hex[:8]}"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "create", key_id, "--team", "cli", "--rpm", "5"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    created = json.loads(out.stdout)
    assert created["id"] == key_id and created["key"].startswith("tg-")
    assert created["quota"]["rpm"] == 5
    listed = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "list"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert key_id in listed.stdout
