"""Fallback through real failures injected by the simulated provider."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "Say hello."}]


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.key, max_retries=0, timeout=15)


FAILURES = [
    ("after-500", "fails-500:ProviderUnavailable"),
    ("after-429", "fails-429:ProviderRateLimited"),
    ("after-hang", "hangs:ProviderTimeout"),
    ("after-malformed", "malformed:ProviderBadResponse"),
    ("after-refused", "nothing-there:ProviderUnavailable"),
]
# A malformed stream breaks after valid chunks: no failover then (see the test below).
CASES = [
    (a, f, s) for a, f in FAILURES for s in (False, True) if (a, s) != ("after-malformed", True)
]


@pytest.mark.parametrize(("alias", "failed", "stream"), CASES)
def test_failing_primary_falls_back_to_healthy_target(gateway, alias, failed, stream) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=alias, messages=MESSAGES, stream=stream
    )
    assert raw.headers["x-tiergate-target"] == "ok"
    # The first failures reach the upstream; once the target's breaker is open (or its
    # throttle honours the 429's Retry-After) it is skipped without an upstream call.
    failed_target, kind = raw.headers["x-tiergate-failed"].split(":")
    assert failed_target == failed.split(":")[0]
    if kind in ("TargetEjected", "TargetThrottled"):
        assert raw.headers["x-tiergate-attempts"] == "1"
    else:
        assert kind == failed.split(":")[1]
        assert raw.headers["x-tiergate-attempts"] == "2"
    if stream:
        chunks = list(raw.parse())
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        assert raw.parse().choices[0].message.content


def test_client_error_from_upstream_is_returned_without_fallback(gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(model="rejected", messages=MESSAGES)
    assert info.value.status_code == 400
    assert info.value.code == "context_length_exceeded"


def test_all_targets_down_is_503_with_retry_after_and_attempts(gateway) -> None:
    started = time.monotonic()
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers={"authorization": f"Bearer {gateway.key}"},
        json={"model": "all-down", "messages": MESSAGES},
        timeout=10,
    )
    assert time.monotonic() - started < 3.1
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "all_targets_failed"
    assert [a["target"] for a in error["attempts"]] == ["fails-500", "fails-429", "nothing-there"]


def test_mid_stream_disconnect_ends_with_an_error_event_not_a_truncated_answer(gateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="cut-stream", messages=MESSAGES, stream=True
    )
    got = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            got.append(chunk)
    assert got, "the first chunks arrived before the cut"

    # On the wire: an error event, no [DONE].
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        headers={"authorization": f"Bearer {gateway.key}"},
        json={"model": "cut-stream", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as response:
        body = b"".join(response.iter_bytes())
    assert b'"stream_interrupted"' in body
    assert b"[DONE]" not in body


def test_malformed_event_mid_stream_is_an_error_not_a_corrupt_answer(gateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="after-malformed", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


@pytest.mark.parametrize("stream", [False, True])
def test_hedge_races_the_next_target_when_the_first_is_slow_to_start(gateway, stream) -> None:
    c = client(gateway)
    c.models.list()  # warm the client: the figure below is about the gateway
    started = time.monotonic()
    raw = c.chat.completions.with_raw_response.create(
        model="hedged", messages=MESSAGES, stream=stream
    )
    if stream:
        assert list(raw.parse())
    else:
        assert raw.parse().choices[0].message.content
    assert time.monotonic() - started < 0.7  # the slow target needs 0.8 s to its first token
    assert raw.headers["x-tiergate-target"] == "ok"
    assert raw.headers["x-tiergate-hedged"] == "slow-start->ok"
    assert raw.headers["x-tiergate-attempts"] == "2"
    assert float(raw.headers["x-tiergate-overhead-ms"]) < 50  # the hedge wait is upstream time
