"""Idempotency keys over HTTP: one upstream call for 100 concurrent retries, replays, 422."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def sim_calls(gw, model: str = "sim-fast") -> int:
    stats = httpx.get(f"{gw.sim_url}/_sim/stats").json()
    by_model = stats.get("by_model", {})
    entry = by_model.get(model, 0)
    return entry if isinstance(entry, int) else int(entry.get("requests", 0))


def body(prompt: str, **extra) -> dict:
    return {"model": "fast", "messages": [{"role": "user", "content": prompt}], **extra}


def test_hundred_concurrent_retries_make_one_upstream_call(gateway) -> None:
    idem = uuid.uuid4().hex
    payload = body(f"idempotent {idem}")
    before = sim_calls(gateway)

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            headers = {"authorization": f"Bearer {gateway.key}", "idempotency-key": idem}
            return await asyncio.gather(
                *(
                    client.post(
                        f"{gateway.base_url}/chat/completions", json=payload, headers=headers
                    )
                    for _ in range(100)
                )
            )

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 100
    assert len({r.json()["choices"][0]["message"]["content"] for r in responses}) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("x-tiergate-idempotent-replay") == "true" for r in responses) == 99
    assert sim_calls(gateway) - before == 1


def post(gw, payload: dict, idem: str, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {gw.key}", "idempotency-key": idem}
    return httpx.post(
        f"{gw.base_url}/chat/completions", json=payload, headers=headers, timeout=10, **kw
    )


def test_same_key_different_body_is_422(gateway) -> None:
    idem = uuid.uuid4().hex
    assert post(gateway, body("one"), idem).status_code == 200
    second = post(gateway, body("two"), idem)
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "idempotency_key_reused"


def test_a_streamed_original_replays_as_sse_and_as_json(gateway) -> None:
    idem = uuid.uuid4().hex
    payload = body(f"stream {idem}", stream=True)
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=payload,
        timeout=10,
        headers={"authorization": f"Bearer {gateway.key}", "idempotency-key": idem},
    ) as first:
        original = b"".join(first.iter_bytes())
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=payload,
        timeout=10,
        headers={"authorization": f"Bearer {gateway.key}", "idempotency-key": idem},
    ) as again:
        replay = b"".join(again.iter_bytes())
        assert again.headers["x-tiergate-idempotent-replay"] == "true"
    assert replay == original
    whole = post(gateway, body(f"stream {idem}"), idem)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"]


def test_a_failed_first_attempt_can_be_retried(gateway) -> None:
    idem = uuid.uuid4().hex
    failed = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "all-down", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {gateway.key}", "idempotency-key": idem},
        timeout=10,
    )
    assert failed.status_code == 503
    again = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "all-down", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {gateway.key}", "idempotency-key": idem},
        timeout=10,
    )
    assert again.status_code == 503
    assert "x-tiergate-idempotent-replay" not in again.headers
