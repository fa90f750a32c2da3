from __future__ import annotations

import io

import orjson
from prometheus_client import generate_latest

from gateway.calls import Note
from gateway.rules import Price
from gateway.telemetry import Outcome, Telemetry, cost_usd, response_headers


def outcome(**overrides) -> Outcome:
    base = dict(
        request_id="r1",
        key_id="k1",
        alias="fast",
        kind="chat",
        stream=False,
        status=200,
        outcome="ok",
        error_kind=None,
        target="a",
        model="m-2025",
        attempts=2,
        prompt_tokens=10,
        completion_tokens=20,
        cost_usd=0.5,
        latency_s=0.02,
        ttft_s=None,
        overhead_s=0.0003,
        notes=(Note("target", "a"), Note("failed", "b:ProviderTimeout")),
    )
    return Outcome(**(base | overrides))


def test_headers_come_from_notes() -> None:
    headers = dict(
        response_headers(
            [
                Note("target", "a"),
                Note("attempts", "3"),
                Note("failed", "x:E1"),
                Note("failed", "y:E2"),
                Note("internal", "no"),
            ],
            "gpt-x",
            "v7",
            0.1234,
        )
    )
    assert headers[b"x-tiergate-target"] == b"a"
    assert headers[b"x-tiergate-attempts"] == b"3"
    assert headers[b"x-tiergate-failed"] == b"x:E1,y:E2"
    assert headers[b"x-tiergate-model"] == b"gpt-x"
    assert headers[b"x-tiergate-config-version"] == b"v7"
    assert headers[b"x-tiergate-overhead-ms"] == b"0.123"
    assert b"x-tiergate-internal" not in headers


def test_cost_from_price_per_million_tokens() -> None:
    price = Price(input_usd_per_mtok=1.0, output_usd_per_mtok=4.0)
    assert cost_usd(price, 1_000_000, 500_000) == 3.0
    assert cost_usd(None, 10, 10) == 0.0


def test_record_writes_one_json_line_and_metrics() -> None:
    sink = io.StringIO()
    telemetry = Telemetry({"a": Price()}, request_log=True, stream=sink)
    telemetry.record(outcome())
    telemetry.record(
        outcome(status=503, outcome="error", error_kind="AllTargetsFailed", target=None)
    )
    lines = sink.getvalue().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert first["request_id"] == "r1" and first["tokens_out"] == 20 and first["attempts"] == 2
    assert first["failed"] == ["b:ProviderTimeout"]
    text = generate_latest(telemetry.registry).decode()
    assert 'tiergate_requests_total{alias="fast",status="200",target="a"} 1.0' in text
    assert 'tiergate_errors_total{kind="AllTargetsFailed"} 1.0' in text
    assert 'tiergate_target_failures_total{kind="ProviderTimeout",target="b"}' in text


def test_request_log_can_be_turned_off() -> None:
    sink = io.StringIO()
    Telemetry({}, request_log=False, stream=sink).record(outcome())
    assert sink.getvalue() == ""
