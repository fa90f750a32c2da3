"""OpenTelemetry traces end to end: a gateway started with the standard OTEL_* variables exports
over OTLP/HTTP to a real receiver in this test (it decodes the protobuf with opentelemetry-proto),
parents its request span on the client's ``traceparent``, nests a span per stage and per upstream
attempt, and passes the attempt's ``traceparent`` to the provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.integration.conftest import KEY, ROOT, free_port, key_hash, stop, wait_for_port

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
ANSWER = {
    "id": "chatcmpl-capture",
    "object": "chat.completion",
    "created": 0,
    "model": "capture-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    upstream_headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def value_of(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attrs(span: Span) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in span.attributes}


def make_handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/v1/traces":  # the OTLP/HTTP receiver
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with received.lock:
                    for rs in request.resource_spans:
                        resource = {kv.key: value_of(kv.value) for kv in rs.resource.attributes}
                        for ss in rs.scope_spans:
                            received.spans.extend(ss.spans)
                            received.resources.extend(resource for _ in ss.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
            else:  # a provider that records what it was sent
                with received.lock:
                    received.upstream_headers.append(
                        {k.lower(): v for k, v in self.headers.items()}
                    )
                reply = json.dumps(ANSWER).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[Received, int]]:
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(received))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def traced_gateway(
    tmp_path: Path, sim_port: int, receiver: tuple[Received, int]
) -> Iterator[tuple[str, Received]]:
    received, otlp_port = receiver
    sim = f"http://127.0.0.1:{sim_port}/v1"
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: traced-1\n"
        "targets:\n"
        f"  broken: {{provider: openai, model: sim-fast, api_base: 'http://127.0.0.1:{free_port()}/v1',"
        " timeouts: {connect_s: 0.5}}\n"
        f"  ok: {{provider: openai, model: sim-fast, api_base: '{sim}'}}\n"
        f"  capture: {{provider: openai, model: capture-model,"
        f" api_base: 'http://127.0.0.1:{otlp_port}/v1'}}\n"
        f"  capture-litellm: {{provider: litellm, model: openai/capture-model,"
        f" api_base: 'http://127.0.0.1:{otlp_port}/v1'}}\n"
        "aliases:\n"
        "  fast: {targets: [broken, ok]}\n"
        "  echo: {targets: [capture]}\n"
        "  echo-litellm: {targets: [capture-litellm]}\n"
        f"keys:\n  - {{id: k, team: tracing, sha256: {key_hash(KEY)}}}\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        GATEWAY_RULES=str(rules),
        GATEWAY_PORT=str(port),
        GATEWAY_DATA_DIR=str(tmp_path / "data"),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        OTEL_SERVICE_NAME="tiergate-under-test",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    with (tmp_path / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, timeout_s=60)
        yield f"http://127.0.0.1:{port}/v1", received
    finally:
        stop(proc)


def spans_of_trace(
    received: Received, trace_id: str, at_least: int, attempts: int = 0
) -> list[Span]:
    """The trace's spans once its request span and ``attempts`` attempt spans have arrived (an
    attempt span ends when its stream is closed, which may come just after the response)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with received.lock:
            spans = [s for s in received.spans if s.trace_id.hex() == trace_id]
        kinds = [s.kind for s in spans]
        if (
            len(spans) >= at_least
            and Span.SPAN_KIND_SERVER in kinds
            and kinds.count(Span.SPAN_KIND_CLIENT) >= attempts
        ):
            return spans
        time.sleep(0.05)
    raise AssertionError(f"only {len(spans)} spans of trace {trace_id} arrived")


def test_request_stage_and_attempt_spans_reach_an_otlp_receiver(
    traced_gateway: tuple[str, Received],
) -> None:
    base_url, received = traced_gateway
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"
    answer = client.chat.completions.create(
        model="fast",
        temperature=0,  # deterministic: the exact cache looks it up (and misses)
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"traceparent": traceparent},
    )
    assert answer.choices[0].message.content

    spans = spans_of_trace(received, TRACE_ID, at_least=5, attempts=2)
    (request,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert request.parent_span_id.hex() == CLIENT_SPAN_ID, "parented on the client's traceparent"
    assert request.name == "POST /v1/chat/completions"
    a = attrs(request)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "fast"
    assert a["gen_ai.response.model"] == "sim-fast"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["tiergate.target"] == "ok" and a["tiergate.attempts"] == 2
    assert a["tiergate.cache"] == "miss", "the cache's decision"
    assert a["tiergate.failed"][0].startswith("broken:"), "the fallback's decision"
    assert a["http.response.status_code"] == 200

    by_id = {s.span_id: s for s in spans}
    stages = {s.name: s for s in spans if s.name.startswith("tiergate.stage ")}
    assert {"tiergate.stage admission", "tiergate.stage exact_cache", "tiergate.stage budget"} <= (
        set(stages)
    )
    for span in stages.values():  # every stage span descends from the request span
        parent = span
        while parent.parent_span_id in by_id:
            parent = by_id[parent.parent_span_id]
        assert parent.span_id == request.span_id

    attempts = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    outcome = {attrs(s)["tiergate.target"]: s for s in attempts}
    assert set(outcome) == {"broken", "ok"}
    failed, ok = attrs(outcome["broken"]), attrs(outcome["ok"])
    assert failed["tiergate.outcome"] == "ProviderUnavailable"
    assert outcome["broken"].status.code == Status.STATUS_CODE_ERROR
    assert ok["tiergate.outcome"] == "ok" and ok["tiergate.ttft_ms"] > 0
    assert ok["gen_ai.system"] == "openai" and ok["gen_ai.request.model"] == "sim-fast"
    assert ok["gen_ai.usage.output_tokens"] > 0
    assert outcome["ok"].name == "chat sim-fast"

    (resource,) = {json.dumps(r, sort_keys=True) for r in received.resources}
    assert json.loads(resource)["service.name"] == "tiergate-under-test"


def test_traceparent_is_passed_upstream_from_the_attempt_span(
    traced_gateway: tuple[str, Received],
) -> None:
    base_url, received = traced_gateway
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"},
    )
    (sent,) = received.upstream_headers
    version, trace_id, parent_id, _ = sent["traceparent"].split("-")
    assert (version, trace_id) == ("00", TRACE_ID)
    spans = spans_of_trace(received, TRACE_ID, at_least=3, attempts=1)
    (attempt,) = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert attempt.span_id.hex() == parent_id, "the provider sees the attempt span as parent"
    assert "authorization" not in sent or KEY not in sent["authorization"]


def test_tracing_is_off_without_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.app import create_app
    from gateway.http.surface_edge import SurfaceEdge
    from gateway.settings import Settings
    from gateway.tracing import wanted

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    assert not wanted(os.environ)
    app = create_app(Settings(rules=ROOT / "routing_rules" / "default.yaml"))
    assert type(app) is SurfaceEdge, "no tracing wrapper composed in"
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert not wanted({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


def test_traceparent_reaches_providers_behind_litellm_too(
    traced_gateway: tuple[str, Received],
) -> None:
    base_url, received = traced_gateway
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    client.chat.completions.create(
        model="echo-litellm",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"},
    )
    (sent,) = received.upstream_headers
    assert sent["traceparent"].split("-")[1] == TRACE_ID
    spans = spans_of_trace(received, TRACE_ID, at_least=3, attempts=1)
    (attempt,) = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert sent["traceparent"].split("-")[2] == attempt.span_id.hex()
    assert attrs(attempt)["gen_ai.system"] == "openai"  # the litellm prefix


def test_a_sampled_out_request_makes_no_spans_and_says_so_upstream(
    traced_gateway: tuple[str, Received],
) -> None:
    base_url, received = traced_gateway
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    unsampled = "11111111111111111111111111111111"
    client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"traceparent": f"00-{unsampled}-{CLIENT_SPAN_ID}-00"},
    )
    (sent,) = received.upstream_headers
    _, trace_id, _, flags = sent["traceparent"].split("-")
    assert (trace_id, flags) == (unsampled, "00"), "the caller's decision travels upstream"
    client.chat.completions.create(  # a sampled request after it: its spans flush the batch
        model="echo",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"},
    )
    spans_of_trace(received, TRACE_ID, at_least=2)
    with received.lock:
        assert not [s for s in received.spans if s.trace_id.hex() == unsampled]
