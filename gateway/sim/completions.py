"""Serving chat completions, Anthropic messages and embeddings: faults, limits, pacing.

Order per request (the policy): validate the body -> check the API key -> read x-sim-* headers
-> draw a fault (see faults.py) -> check the context window -> compose the answer -> charge the
rate limits -> plan the response with its pauses. Error faults and refusals answer at once;
latency applies to successful answers (and to slow-first-token, hang and disconnect).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from gateway.sim import embeddings
from gateway.sim.answers import Answer, Voice, answer, build_voice, split_pieces
from gateway.sim.anthropic_format import AnthropicWire
from gateway.sim.bodies import EmbeddingRequest
from gateway.sim.config import DEFAULT_MODEL_KEY, FaultKind, FaultRule, ModelBehaviour, SimConfig
from gateway.sim.faults import (
    NO_OVERRIDES,
    FaultBook,
    Overrides,
    Timing,
    fires,
    first_firing,
    plan_timing,
    read_overrides,
)
from gateway.sim.limits import Admission, ModelLimiter
from gateway.sim.openai_format import OpenAIWire, embeddings_body
from gateway.sim.openai_format import invalid_from as openai_invalid
from gateway.sim.orders import Order, OrderMemo, Prepared, read_chat, read_messages
from gateway.sim.protocol import Drop, Full, Hang, Plan, Streamed
from gateway.sim.provider_errors import (
    ProviderError,
    context_exceeded,
    fault_error,
    invalid_request,
    rate_limited,
    unauthorized,
)
from gateway.sim.quality import Graded, QualityBook
from gateway.sim.stats import SimStats
from gateway.sim.wire import Completion, Events, Wire

Headers = dict[bytes, bytes]


class _Turn(NamedTuple):
    """One request's resolved model entry, overrides and drawn fault."""

    model: str
    key: str
    behaviour: ModelBehaviour
    overrides: Overrides
    fault: FaultRule | None

    @property
    def kind(self) -> FaultKind | None:
        return None if self.fault is None else self.fault.fault


class CompletionService:
    """The model-facing endpoints. Holds per-model material built once at start-up."""

    def __init__(self, config: SimConfig, faults: FaultBook, stats: SimStats) -> None:
        self._config = config
        self._faults = faults
        self._stats = stats
        self._rng = random.Random(config.seed)
        self._voices: dict[str, Voice] = {
            key: build_voice(key, behaviour, config.seed)
            for key, behaviour in config.models.items()
        }
        now = time.monotonic()
        self._limiters = {
            key: ModelLimiter.create(b.rpm_limit, b.tpm_limit, now)
            for key, b in config.models.items()
        }
        self._require_key = config.require_api_key
        self._keys = frozenset(config.api_keys)
        self._run_id = secrets.token_hex(4)
        self._serial = 0
        self._timings = {
            key: plan_timing(b, NO_OVERRIDES, None, 0.0) for key, b in config.models.items()
        }
        self._books = {
            key: QualityBook.load(Path(b.quality.dataset), b.quality.role)
            for key, b in config.models.items()
            if b.quality is not None
        }
        self._chat_memo = OrderMemo()
        self._messages_memo = OrderMemo()
        self.openai = OpenAIWire()
        self.anthropic = AnthropicWire()

    # ---------------------------------------------------------------- endpoints
    def chat(self, body: bytes, headers: Headers) -> Plan:
        return self._serve(self.openai, self._chat_memo, read_chat, body, headers)

    def messages(self, body: bytes, headers: Headers) -> Plan:
        return self._serve(self.anthropic, self._messages_memo, read_messages, body, headers)

    def embed(self, body: bytes, headers: Headers) -> Plan:
        wire = self.openai
        try:
            request = EmbeddingRequest.model_validate_json(body)
        except ValidationError as exc:
            return wire.error(openai_invalid(exc))
        items = _embedding_items(request.input)
        tokens = sum(embeddings.tokens(item) for item in items)
        turn = self._begin(wire, request.model, headers, tokens)
        if not isinstance(turn, _Turn):
            return turn
        limit_headers, refusal = self._charge(wire, turn, tokens)
        if refusal is not None:
            return refusal
        dims = request.dimensions or self._config.embedding_dimensions
        vectors = [embeddings.vector(item, dims) for item in items]
        encoded = (
            [embeddings.as_base64(v) for v in vectors]
            if request.encoding_format == "base64"
            else vectors
        )
        timing = self._timing(turn)
        if turn.kind is FaultKind.DISCONNECT:
            return Drop(timing.latency_s)
        payload = embeddings_body(request.model, encoded, tokens)
        if turn.kind is FaultKind.MALFORMED:
            payload = payload[: len(payload) // 2]
        return Full(200, payload, limit_headers, delay_s=timing.latency_s)

    # ---------------------------------------------------------------- shared steps
    def _next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}sim{self._run_id}{self._serial:010x}"

    def _timing(self, turn: _Turn) -> Timing:
        spread = turn.behaviour.latency_jitter_ms
        if turn.fault is None and turn.overrides is NO_OVERRIDES and not spread:
            return self._timings[turn.key]
        jitter = spread * self._rng.random() if spread > 0 else 0.0
        return plan_timing(turn.behaviour, turn.overrides, turn.fault, jitter)

    def _authorized(self, headers: Headers) -> bool:
        key = headers.get(b"x-api-key")
        if key is None:
            bearer = headers.get(b"authorization", b"")
            key = bearer[7:] if bearer[:7].lower() == b"bearer " else None
        if not key:
            return False
        return not self._keys or key.decode(errors="replace") in self._keys

    def _draw_fault(
        self, model: str, behaviour: ModelBehaviour, overrides: Overrides
    ) -> FaultRule | None:
        roll = self._rng.random
        header_rule = overrides.fault
        if header_rule is not None and fires(header_rule, roll):
            return header_rule
        runtime = self._faults.draw(model, roll)
        if runtime is not None or not behaviour.faults:
            return runtime
        return first_firing(behaviour.faults, roll)

    def _begin(self, wire: Wire, model: str, headers: Headers, prompt_tokens: int) -> _Turn | Plan:
        """Key, overrides, fault and context window: a _Turn to go on with, or a final plan."""
        if self._require_key and not self._authorized(headers):
            return wire.error(unauthorized())
        key = model if model in self._voices else DEFAULT_MODEL_KEY
        behaviour = self._config.models[key]
        self._stats.by_model[model] += 1
        overrides = NO_OVERRIDES
        if headers:
            try:
                overrides = read_overrides(headers)
            except ValueError as exc:
                return wire.error(invalid_request(str(exc)))
        fault = self._draw_fault(model, behaviour, overrides)
        if fault is not None:
            self._stats.faults[fault.fault.value] += 1
            if fault.fault is FaultKind.HANG:
                return Hang()
            error = fault_error(fault, prompt_tokens)
            if error is not None:
                return wire.error(error, b"x-sim-fault: %s\r\n" % fault.fault.value.encode())
        window = behaviour.context_window_tokens
        if window is not None and prompt_tokens > window:
            return wire.error(context_exceeded(prompt_tokens, window))
        return _Turn(model, key, behaviour, overrides, fault)

    def _charge(self, wire: Wire, turn: _Turn, tokens: int) -> tuple[bytes, Plan | None]:
        """Charge the model's rate limits: (rate-limit header lines, a 429 plan if refused)."""
        limiter = self._limiters[turn.key]
        if limiter is None:
            return b"", None
        admission: Admission = limiter.admit(tokens)
        lines = wire.limit_headers(admission.headers)
        if admission.admitted:
            return lines, None
        self._stats.rate_limited += 1
        error = rate_limited(
            turn.model, admission.refused_by or "requests", admission.limit, admission.retry_after_s
        )
        return lines, wire.error(error, lines)

    def _serve(
        self,
        wire: Wire,
        memo: OrderMemo,
        reader: Callable[[bytes], Order | ProviderError],
        body: bytes,
        headers: Headers,
    ) -> Plan:
        prepared = memo.get(body)
        if prepared is None:
            order = reader(body)
            if isinstance(order, ProviderError):
                return wire.error(order)
            prepared = memo.put(body, order)
        order = prepared.order
        turn = self._begin(wire, order.model, headers, order.prompt.tokens)
        if not isinstance(turn, _Turn):
            return turn
        answers, reusable = self._answers(prepared, turn)
        logprob = self._voices[turn.key].logprob
        book = self._books.get(turn.key) if self._books else None
        known = book.lookup(order.prompt.last_user) if book is not None else None
        if known is not None and order.ask.tool is None:
            answers, reusable, logprob = (
                self._graded(known, order.n, order.ask.cap),
                False,
                known.logprob,
            )
            self._stats.graded[order.model] += 1
            self._stats.correct[order.model] += known.correct
        completion = Completion(
            self._next_id(order.id_prefix),
            int(time.time()),
            order.model,
            answers,
            prepared.tokens if reusable else sum(each.tokens for each in answers),
            order.prompt.tokens,
            logprob,
            order.top_logprobs,
            order.include_usage,
        )
        extra, refusal = self._charge(
            wire, turn, order.prompt.tokens + completion.completion_tokens
        )
        if refusal is not None:
            return refusal
        return self._respond(wire, turn, completion, order.stream, extra, prepared, reusable)

    @staticmethod
    def _graded(known: Graded, n: int, cap: int | None) -> tuple[Answer, ...]:
        pieces = split_pieces(known.text)
        if cap is not None and len(pieces) > cap:
            return (Answer(pieces[:cap], "length"),) * n
        return (Answer(pieces, "stop"),) * n

    def _answers(self, prepared: Prepared, turn: _Turn) -> tuple[tuple[Answer, ...], bool]:
        """The order's answers, and whether they are the remembered ones."""
        order = prepared.order
        ask = order.ask
        voice = self._voices[turn.key]
        if turn.kind is FaultKind.IGNORE_MAX_TOKENS:
            ask = ask._replace(cap=None)
        elif ask.tool is None and turn.overrides.completion_tokens is None:
            if prepared.answers is None:
                prepared.answers = tuple(
                    answer(voice, order.prompt, ask, i, "") for i in range(order.n)
                )
                prepared.tokens = sum(each.tokens for each in prepared.answers)
            return prepared.answers, True
        if turn.overrides.completion_tokens is not None:
            ask = ask._replace(want_tokens=turn.overrides.completion_tokens)
        answers = tuple(
            answer(
                voice, order.prompt, ask, i, self._next_id(order.call_prefix) if ask.tool else ""
            )
            for i in range(order.n)
        )
        return answers, False

    def _events(self, wire: Wire, completion: Completion, prepared: Prepared) -> Events:
        """The stream for remembered answers: rendered once, then only re-stamped."""
        if prepared.events is None:
            events = wire.events(completion)
            prepared.events = (events, completion)
            return events
        events, rendered_for = prepared.events
        return wire.restamp(events, rendered_for, completion)

    def _respond(
        self,
        wire: Wire,
        turn: _Turn,
        completion: Completion,
        stream: bool,
        extra: bytes,
        prepared: Prepared,
        reusable: bool,
    ) -> Plan:
        timing = self._timing(turn)
        kind = turn.kind
        if not stream:
            if kind is FaultKind.DISCONNECT:
                return Drop(timing.latency_s)
            if not reusable:
                rest = wire.rest(completion)
            elif prepared.rest is None:
                rest = prepared.rest = wire.rest(completion)
            else:
                rest = prepared.rest
            body = wire.stamp(completion, rest)
            if kind is FaultKind.MALFORMED:
                body = body[: len(body) // 2]
            return Full(200, body, extra, delay_s=timing.latency_s)
        self._stats.streams += 1
        events = self._events(wire, completion, prepared) if reusable else wire.events(completion)
        steps = events.steps
        if kind is FaultKind.DISCONNECT and turn.fault is not None:
            # Cut before the last content event, so the stream is always visibly incomplete.
            cut = min(turn.fault.after_chunks, max(len(steps) - 1, 0))
            first = events.head + (steps[0] if cut > 0 else b"")
            return Streamed(extra, first, steps[1:cut], b"", timing.ttft_s, timing.gap_s, True)
        first = events.head + (steps[0] if steps else b"")
        paced = (wire.malformed_event,) if kind is FaultKind.MALFORMED else steps[1:]
        return Streamed(extra, first, paced, events.tail, timing.ttft_s, timing.gap_s)


def model_names(config: SimConfig) -> Iterable[tuple[str, str]]:
    """(name, owner) of each configured model, ``default`` left out."""
    return ((n, b.owned_by) for n, b in config.models.items() if n != DEFAULT_MODEL_KEY)


def _embedding_items(raw: str | list[str] | list[int] | list[list[int]]) -> list[str | list[int]]:
    """Embedding inputs as a list: a string, strings, one token list, or token lists."""
    if isinstance(raw, str):
        return [raw]
    ints = [value for value in raw if isinstance(value, int)]
    if ints and len(ints) == len(raw):
        return [ints]
    return [value for value in raw if isinstance(value, str | list)]
