"""Escalation slot: ask a cheaper tier, judge its answer with gates, re-ask the next tier if unsure.

Policy:

- Only calls routed to a tier with a tier above it are judged; the strongest tier's answer is
  served as it is. Gates run in the order the rules list them; the first that fails sends the
  call one tier up (``x-tiergate-escalated: <gate>``), where it is judged again if that tier
  has one above it.
- A cheaper tier whose every target failed (an outage, not the request's fault) also goes up:
  tiers are a fallback of last resort (``escalated: unavailable``).
- Gates that need token logprobs or extra samples make the stage ask the cheaper tier for them
  (``logprobs``/``top_logprobs``, ``n``); the client gets back only what it asked for.
- Streaming calls: with ``streaming: buffer`` the cheaper tier's stream is read whole and judged
  before its first chunk is sent (the client waits for the whole cheap answer, then receives it
  as a stream); with ``streaming: off`` streams pass through ungated (``escalation: stream``).
- Every upstream call draws from the call's one ``Allowance`` (``max_attempts``) and, after the
  request's first, from the retry budget, like fallback and hedging: with nothing left, the
  cheaper answer is served and the notes say why (``escalation: no-allowance``).
- Verifier gates (``kind: verifier``) run last, only when every other gate passed: one call to
  the verifier alias's targets, from the same allowance; a verifier that cannot be reached lets
  the answer pass (its outage must not double every call's cost).
- Time spent asking and reading the judged tiers counts as upstream time, so the reported
  gateway overhead (``x-tiergate-overhead-ms``) stays the gateway's own.
- Tokens and cost of the judged answers are carried on the served reply (``earlier_*``), so
  budgets settle what was really spent; the reservation assumed every tier (runtime).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from gateway import notes as nk
from gateway.calls import Call, Note, Reply, Route
from gateway.errors import AllTargetsFailed, GatewayError
from gateway.escalation.gates import Answer, Gate, Verdict
from gateway.escalation.verifier_prompt import VerifierModelGate
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.routing.signals import last_user_text
from gateway.rules import Price

TOP_LOGPROBS = 5
VERIFIER_MAX_TOKENS = 2  # "yes" or "no"


@dataclass(frozen=True, slots=True)
class Plan:
    """An alias's gates, built once per rules version."""

    gates: tuple[Gate, ...]
    streaming: str  # buffer | off
    needs_logprobs: bool
    samples: int
    verifiers: tuple[VerifierModelGate, ...] = ()  # asked after the other gates pass


def plan_of(gates: Sequence[Gate], streaming: str) -> Plan:
    verifiers = tuple(g for g in gates if isinstance(g, VerifierModelGate))
    local = tuple(g for g in gates if not isinstance(g, VerifierModelGate))
    return Plan(
        local,
        streaming,
        any(g.needs_logprobs for g in local),
        max((g.samples for g in local), default=0),
        verifiers,
    )


@dataclass(slots=True)
class Collected:
    """One whole answer of a judged tier, read from its reply."""

    chunks: list[bytes]
    answer: Answer
    rewrite: bool  # chunks must be re-encoded to drop what the client did not ask for


async def replay(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class Escalation:
    name = "escalation"

    def __init__(
        self,
        plans: Mapping[str, Plan],
        target_price: Mapping[str, Price],
        verifier_routes: Mapping[str, Route] | None = None,  # verifier alias -> its route
    ) -> None:
        self._plans = dict(plans)
        self._price = dict(target_price)
        self._verifier_routes = dict(verifier_routes or {})

    async def __call__(self, call: Call, next_: Next) -> Reply:
        plan = self._plans.get(call.alias)
        route = call.route
        if plan is None or route is None:
            return await next_(call)
        if not route.higher:
            reply = await next_(call)
            return reply.noted(Note(nk.TIER, route.tier))
        if call.stream and plan.streaming == "off":
            reply = await next_(call)
            return reply.noted(Note(nk.TIER, route.tier), Note(nk.ESCALATION, "stream"))
        return await self._climb(call, route, plan, next_)

    async def _climb(self, call: Call, route: Route, plan: Plan, next_: Next) -> Reply:
        earlier_tokens = 0
        earlier_usd = 0.0
        reasons: list[str] = []
        notes: list[Note] = []
        current = call
        started = time.perf_counter()
        while True:
            assert current.route is not None
            route = current.route
            if not route.higher:
                judged_s = time.perf_counter() - started  # cheaper tiers asked and read
                reply = await next_(current)
                reply.stats.upstream_first_s += judged_s
                return self._served(reply, route, reasons, notes, earlier_tokens, earlier_usd)
            asked = self._ask(current, plan)
            try:
                reply = await next_(asked)
            except AllTargetsFailed:
                if not self._may_climb(current):
                    raise
                reasons.append("unavailable")
                notes.append(Note(nk.GATE, f"{route.tier}:unavailable"))
                current = current.routed(route.higher[0])
                continue
            collected = await self._collect(reply, call, asked)
            verdict = first_failure(plan.gates, collected.answer)
            if verdict is None and plan.verifiers:
                verdict, spent = await self._verify(current, plan, collected.answer, next_)
                earlier_tokens += spent[0]
                earlier_usd += spent[1]
            chunks = rewritten(collected, call) if collected.rewrite else collected.chunks
            if verdict is None:
                notes.append(Note(nk.GATE, f"{route.tier}:pass"))
                reply.stats.upstream_first_s = time.perf_counter() - started  # read whole
                whole = reply.with_chunks(replay(chunks))
                return self._served(whole, route, reasons, notes, earlier_tokens, earlier_usd)
            notes.append(Note(nk.GATE, f"{route.tier}:{verdict.gate}:{verdict.reason}"))
            if verdict.score is not None:
                notes.append(Note(nk.GATE_SCORE, f"{verdict.gate}:{verdict.score:.4f}"))
            if not self._may_climb(current):
                notes.append(Note(nk.ESCALATION, "no-allowance"))
                reply.stats.upstream_first_s = time.perf_counter() - started
                whole = reply.with_chunks(replay(chunks))
                return self._served(whole, route, reasons, notes, earlier_tokens, earlier_usd)
            reasons.append(verdict.gate)
            stats = reply.stats
            earlier_tokens += stats.prompt_tokens + stats.completion_tokens + stats.earlier_tokens
            earlier_usd += self._usd(reply) + stats.earlier_usd
            current = current.routed(route.higher[0])

    async def _verify(
        self, call: Call, plan: Plan, answer: Answer, next_: Next
    ) -> tuple[Verdict | None, tuple[int, float]]:
        """Ask each verifier gate's model about the answer: one upstream call each, from the
        same allowance. A verifier that cannot be reached lets the answer pass."""
        tokens, usd = 0, 0.0
        for gate in plan.verifiers:
            route = self._verifier_routes.get(gate.alias)
            if route is None or not self._may_climb(call):
                continue
            request = ChatRequest.model_validate(
                {
                    "model": gate.alias,
                    "messages": gate.messages(answer),
                    "max_tokens": VERIFIER_MAX_TOKENS,
                    "temperature": 0,
                    "logprobs": True,
                }
            )
            try:
                reply = await next_(replace(call, request=request, route=route))
                chunks = [chunk async for chunk in reply.chunks]
            except GatewayError:
                continue
            said = whole_answer(chunks, "", None)
            first = said.token_logprobs[0] if said.token_logprobs else None
            tokens += reply.stats.prompt_tokens + reply.stats.completion_tokens
            usd += self._usd(reply)
            verdict = gate.verdict(said.text, first)
            if not verdict.passed:
                return verdict, (tokens, usd)
        return None, (tokens, usd)

    def _may_climb(self, call: Call) -> bool:
        left = call.allowance.left
        return left is None or left > 0

    def _usd(self, reply: Reply) -> float:
        target = next((n.value for n in reply.notes if n.key == nk.TARGET), "")
        price = self._price.get(target, Price())
        stats = reply.stats
        return (
            stats.prompt_tokens * price.input_usd_per_mtok
            + stats.completion_tokens * price.output_usd_per_mtok
        ) / 1_000_000

    def _served(
        self,
        reply: Reply,
        route: Route,
        reasons: list[str],
        notes: list[Note],
        earlier_tokens: int,
        earlier_usd: float,
    ) -> Reply:
        reply.stats.earlier_tokens += earlier_tokens
        reply.stats.earlier_usd += earlier_usd
        out = [Note(nk.TIER, route.tier), *notes]
        if reasons:
            out.append(Note(nk.ESCALATED, ",".join(reasons)))
        return reply.noted(*out)

    def _ask(self, call: Call, plan: Plan) -> Call:
        """The cheaper tier's request: with the logprobs and samples the gates need."""
        request = call.request
        assert isinstance(request, ChatRequest)
        update: dict[str, Any] = {}
        if plan.needs_logprobs and not request.logprobs:
            update["logprobs"] = True
            update["top_logprobs"] = max(TOP_LOGPROBS, request.top_logprobs or 0)
        if plan.samples and (request.n or 1) == 1:
            update["n"] = 1 + plan.samples
        if not update:
            return call
        return call.with_request(request.model_copy(update=update))

    async def _collect(self, reply: Reply, call: Call, asked: Call) -> Collected:
        chunks: list[bytes] = []
        try:
            async for chunk in reply.chunks:
                chunks.append(chunk)
        finally:
            aclose = getattr(reply.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        request = call.request
        assert isinstance(request, ChatRequest)
        prompt = last_user_text(request.messages)
        fmt = request.response_format
        answer = (
            streamed_answer(chunks, prompt, fmt)
            if call.stream
            else whole_answer(chunks, prompt, fmt)
        )
        return Collected(chunks, answer, rewrite=asked.request is not call.request)


def first_failure(gates: Sequence[Gate], answer: Answer) -> Verdict | None:
    for gate in gates:
        verdict = gate.judge(answer)
        if not verdict.passed:
            return verdict
    return None


def _logprob_parts(
    logprobs: Any,
) -> tuple[list[float], tuple[tuple[str, float], ...] | None]:
    if not isinstance(logprobs, dict):
        return [], None
    content = logprobs.get("content") or []
    values = [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]
    top = None
    if content and isinstance(content[0], dict):
        alts = content[0].get("top_logprobs") or []
        top = tuple((str(a.get("token", "")), float(a.get("logprob", 0.0))) for a in alts)
    return values, top


def whole_answer(chunks: Sequence[bytes], prompt: str, fmt: Any) -> Answer:
    body = orjson.loads(chunks[0]) if chunks else {}
    choices = sorted(body.get("choices") or [], key=lambda c: c.get("index", 0))
    if not choices:
        return Answer(prompt, "", None, fmt, None, None)
    first = choices[0]
    message = first.get("message") or {}
    values, top = _logprob_parts(first.get("logprobs"))
    samples = tuple(str((c.get("message") or {}).get("content") or "") for c in choices[1:])
    return Answer(
        prompt=prompt,
        text=str(message.get("content") or ""),
        finish_reason=first.get("finish_reason"),
        response_format=fmt,
        token_logprobs=tuple(values) or None,
        first_token_top=top,
        samples=samples,
    )


def streamed_answer(chunks: Sequence[bytes], prompt: str, fmt: Any) -> Answer:
    texts: dict[int, list[str]] = {}
    values: list[float] = []
    top: tuple[tuple[str, float], ...] | None = None
    finish: str | None = None
    for raw in chunks:
        body = orjson.loads(raw)
        for choice in body.get("choices") or []:
            index = int(choice.get("index", 0))
            content = (choice.get("delta") or {}).get("content")
            if content:
                texts.setdefault(index, []).append(content)
            if index == 0:
                more, first_top = _logprob_parts(choice.get("logprobs"))
                if top is None and first_top is not None and not values:
                    top = first_top
                values.extend(more)
                finish = choice.get("finish_reason") or finish
    samples = tuple("".join(texts[i]) for i in sorted(texts) if i > 0)
    return Answer(
        prompt, "".join(texts.get(0, [])), finish, fmt, tuple(values) or None, top, samples
    )


def rewritten(collected: Collected, call: Call) -> list[bytes]:
    """Drop the extra samples and logprobs the stage asked for and the client did not."""
    request = call.request
    assert isinstance(request, ChatRequest)
    keep_logprobs = bool(request.logprobs)
    keep_n = request.n or 1
    out: list[bytes] = []
    for raw in collected.chunks:
        body = orjson.loads(raw)
        choices = body.get("choices")
        if isinstance(choices, list):
            kept = [c for c in choices if int(c.get("index", 0)) < keep_n]
            if not keep_logprobs:
                for choice in kept:
                    if "logprobs" in choice:
                        choice["logprobs"] = None
            if call.stream and choices and not kept:
                continue  # a chunk that only carried a dropped sample
            body["choices"] = kept
        out.append(orjson.dumps(body))
    return out
