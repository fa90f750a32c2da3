"""OpenTelemetry traces: one span per request, one per stage, one per upstream attempt.

Why it is decided once, at start-up: tracing is off unless the standard OTEL_* variables ask for
it (``OTEL_TRACES_EXPORTER=otlp`` or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``; never with
``OTEL_SDK_DISABLED=true``). When it is off nothing here is imported or composed, so a request
pays nothing for it. When it is on, ``build_runtime`` wraps each stage and each target's stack
(``traced_stage``, ``traced_attempt``), the app wraps the HTTP edge (``TracedEdge``: the request
span, parented on the client's W3C ``traceparent``), the provider sends the attempt's
``traceparent`` upstream, and ``Telemetry.record`` hands each finished request's ``Outcome`` here
to become the request span's attributes.

Attributes follow the OpenTelemetry GenAI semantic conventions where one exists
(``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``); Tiergate's own decisions (cache, router, fallback notes, cost,
config version) are ``tiergate.*``. The exporter is OTLP over HTTP/protobuf, configured by the
SDK from the same variables (endpoint, headers, timeout, sampler, service name, resource).

Only this module imports opentelemetry (the ``otel`` extra).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from gateway.calls import Call, Reply
    from gateway.pipeline import Next, RequestStages, Stage
    from gateway.rules import Target
    from gateway.telemetry import Outcome

from gateway import notes

log = logging.getLogger("tiergate.tracing")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACED_PATHS = frozenset(
    {"/v1/chat/completions", "/chat/completions", "/v1/embeddings", "/embeddings"}
)


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the OTEL_* environment asks for traces (off by default)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return "otlp" in {e.strip() for e in exporter.split(",")}
    return any(env.get(v) for v in ENDPOINT_VARIABLES)


def open_tracing(env: Mapping[str, str], stage_spans: bool = True) -> Tracing | None:
    """The process's tracing, or None when the environment does not ask for it."""
    if not wanted(env):
        return None
    try:
        return Tracing.from_env(env, stage_spans)
    except ImportError:
        log.error(
            "OTEL_* variables ask for traces but the otel extra is not installed "
            "(pip install 'tiergate[otel]'): running without traces"
        )
        return None


class Tracing:
    """The tracer provider (OTLP/HTTP exporter, batch processor) and the wrappers built on it."""

    def __init__(self, provider: TracerProvider, stage_spans: bool = True) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.stage_spans = stage_spans
        self.tracer: Tracer = provider.get_tracer("tiergate")
        self.api = trace
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_env(cls, env: Mapping[str, str], stage_spans: bool = True) -> Tracing:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol != "http/protobuf":
            log.warning("OTLP protocol %s is not supported; exporting http/protobuf", protocol)
        # Resource and sampler come from OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and
        # OTEL_TRACES_SAMPLER[_ARG], read by the SDK itself.
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "tiergate")})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing on: OTLP/HTTP export")
        return cls(provider, stage_spans)

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: run it off the event loop)."""
        self.provider.shutdown()

    # -- the request span -------------------------------------------------------------------

    def edge(self, app: ASGIApp) -> ASGIApp:
        return TracedEdge(app, self)

    def on_outcome(self, o: Outcome) -> None:
        """A finished request's facts onto its span (the current span: the request's)."""
        span = self.api.get_current_span()
        if not span.is_recording():
            return
        # The notes first (cache, router, fallback, budget decisions); the typed fields below
        # win where a note says the same thing as text (target, attempts).
        attrs: dict[str, Any] = {}
        failed: list[str] = []
        for note in o.notes:
            if note.key == notes.FAILED:
                failed.append(note.value)
            else:
                attrs["tiergate." + note.key.replace("-", "_")] = note.value
        if failed:
            attrs["tiergate.failed"] = failed
        attrs |= {
            "gen_ai.operation.name": "chat" if o.kind == "chat" else o.kind,
            "gen_ai.request.model": o.alias,
            "http.response.status_code": o.status,
            "tiergate.request_id": o.request_id,
            "tiergate.key_id": o.key_id,
            "tiergate.alias": o.alias,
            "tiergate.outcome": o.outcome,
            "tiergate.attempts": o.attempts,
            "tiergate.stream": o.stream,
            "tiergate.cost_usd": o.cost_usd,
        }
        if o.model:
            attrs["gen_ai.response.model"] = o.model
        if o.target:
            attrs["tiergate.target"] = o.target
        if o.prompt_tokens or o.completion_tokens:
            attrs["gen_ai.usage.input_tokens"] = o.prompt_tokens
            attrs["gen_ai.usage.output_tokens"] = o.completion_tokens
        if o.ttft_s is not None:
            attrs["tiergate.ttft_ms"] = round(o.ttft_s * 1000, 3)
        if o.overhead_s is not None:
            attrs["tiergate.overhead_ms"] = round(o.overhead_s * 1000, 3)
        if o.error_kind:
            attrs["error.type"] = o.error_kind
        span.set_attributes(attrs)
        if o.status >= 500 or o.outcome == "stream_error":
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, o.error_kind or o.outcome))

    # -- stage and attempt spans --------------------------------------------------------------

    def stages(self, stages: RequestStages) -> RequestStages:
        """The same stages, each inside its own span (composed once, at build time); unchanged
        when stage spans are off (``GATEWAY_TRACE_STAGES=false``)."""
        if not self.stage_spans:
            return stages
        wrapped = {
            f.name: traced_stage(self, stage)
            for f in fields(stages)
            if (stage := getattr(stages, f.name)) is not None
        }
        return replace(stages, **wrapped)

    def attempt(self, name: str, target: Target, stack: Next) -> Next:
        return traced_attempt(self, name, target, stack)

    def inject(self) -> tuple[tuple[str, str], ...]:
        """``traceparent`` (and ``tracestate``) of the current span, for the upstream call."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return tuple(carrier.items())

    def extract(self, headers: list[tuple[bytes, bytes]]) -> Any:
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in headers
            if k in (b"traceparent", b"tracestate")
        }
        return self._propagator.extract(carrier) if carrier else None


class TracedEdge:
    """The request span around the hot routes, parented on the client's ``traceparent``."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self._app = app
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in TRACED_PATHS:
            await self._app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind

        tracing = self._tracing
        parent = tracing.extract(scope["headers"])
        with tracing.tracer.start_as_current_span(
            f"{scope['method']} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": path},
        ):
            await self._app(scope, receive, send)


def traced_stage(tracing: Tracing, stage: Stage) -> Stage:
    return TracedStage(tracing, stage)


class TracedStage:
    """A stage inside a span named after it; nested stages nest (one task, one context)."""

    def __init__(self, tracing: Tracing, stage: Stage) -> None:
        self.name = stage.name
        self._stage = stage
        self._tracer = tracing.tracer
        self._current = tracing.api.get_current_span
        self._span_name = f"tiergate.stage {stage.name}"

    async def __call__(self, call: Call, next_: Next) -> Reply:
        if not self._current().is_recording():
            # The request was sampled out: its children would be too, so make none.
            return await self._stage(call, next_)
        with self._tracer.start_as_current_span(
            self._span_name, attributes={"tiergate.stage": self.name}
        ):
            return await self._stage(call, next_)


def gen_ai_system(target: Target) -> str:
    """The provider's name for gen_ai.system: openai for OpenAI-compatible targets, else the
    litellm prefix (``anthropic/claude-...`` -> anthropic)."""
    if target.provider == "openai":
        return "openai"
    return target.model.split("/", 1)[0] if "/" in target.model else target.provider


def traced_attempt(tracing: Tracing, name: str, target: Target, stack: Next) -> Next:
    """One upstream attempt as a CLIENT span: from the call to the end of its stream, with the
    target, the outcome, the time to the first chunk and the usage the upstream reported."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from gateway.errors import GatewayError

    tracer, trace = tracing.tracer, tracing.api
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": gen_ai_system(target),
        "gen_ai.provider.name": gen_ai_system(target),
        "gen_ai.request.model": target.model,
        "server.address": target.api_base,
        "tiergate.target": name,
    }

    async def attempt(call: Call) -> Reply:
        if not trace.get_current_span().is_recording():
            return await stack(call)  # sampled out; traceparent still goes upstream (flag 00)
        attrs = dict(base)
        if call.kind.value != "chat":
            attrs["gen_ai.operation.name"] = call.kind.value
        span_name = f"{attrs['gen_ai.operation.name']} {target.model}"
        span = tracer.start_span(span_name, kind=SpanKind.CLIENT, attributes=attrs)
        started = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                reply = await stack(call)
        except GatewayError as exc:
            span.set_attributes({"tiergate.outcome": exc.kind, "error.type": exc.kind})
            span.set_status(Status(StatusCode.ERROR, exc.message[:200]))
            span.end()
            raise
        except BaseException as exc:
            span.set_attributes({"tiergate.outcome": type(exc).__name__})
            span.end()
            raise
        return reply.with_chunks(_spanned(reply, span, started))

    return attempt


async def _spanned(reply: Reply, span: Span, started: float) -> AsyncIterator[bytes]:
    """Relay the chunks; the first one stamps the TTFT, the end closes the span."""
    from opentelemetry.trace import Status, StatusCode

    from gateway.errors import GatewayError

    outcome = "ok"
    first = True
    try:
        async for chunk in reply.chunks:
            if first:
                ttft_ms = round((time.perf_counter() - started) * 1000, 3)
                span.set_attribute("tiergate.ttft_ms", ttft_ms)
                first = False
            yield chunk
    except GatewayError as exc:
        outcome = exc.kind
        span.set_status(Status(StatusCode.ERROR, exc.message[:200]))
        raise
    except GeneratorExit:
        # Closed early: after a whole (non-streamed) answer that is normal; before any chunk,
        # the chain moved on (a hedge won) or the client went away.
        outcome = "closed" if first else "ok"
        raise
    finally:
        stats = reply.stats
        attrs: dict[str, Any] = {"tiergate.outcome": outcome}
        if stats.model:
            attrs["gen_ai.response.model"] = stats.model
        if stats.prompt_tokens or stats.completion_tokens:
            attrs["gen_ai.usage.input_tokens"] = stats.prompt_tokens
            attrs["gen_ai.usage.output_tokens"] = stats.completion_tokens
        if stats.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = [stats.finish_reason]
        span.set_attributes(attrs)
        span.end()
        aclose = getattr(reply.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
