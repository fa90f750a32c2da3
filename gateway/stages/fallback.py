"""FallbackChain: the terminal stage. Try the route's targets until one answers.

Policy, in the order it applies:

- Order: priority groups in order; inside a group, a weighted random order (60/40 weights send
  60% of first attempts to the first target). A plain list is a strict chain.
- A target's stack may refuse without calling upstream (breaker open: ``TargetEjected``; at its
  RPM/TPM limit or told to wait by a 429: ``TargetThrottled``). Those skips cost nothing and
  count against neither ``max_attempts`` nor the retry budget.
- A failure another target may not share (connection refused, timeout, 5xx, malformed answer,
  429, quota) moves on; ``retries`` on a target retry it first, after a full-jitter exponential
  backoff, for server errors and malformed answers only (a 429 or a quota will not clear in
  milliseconds, and a timed-out target has already used up a deadline's worth of the request).
- ``max_attempts`` bounds the upstream calls of one request. Retries of the same target and
  hedges spend from the process-wide retry budget (``RetryBudget``), so an outage never turns
  into a retry storm against the failing provider. A hop to the next target is not charged to
  the budget: it adds no load to the target that failed, the breakers stop the hops to a dead
  target within a few calls, and a budget here would turn a hung primary (every request
  timing out at once) into refusals although the secondary is healthy.
- Context window exceeded: only targets with a larger window are tried after it. Content policy:
  returned to the client, or tried elsewhere when ``resilience.content_policy: fallback``.
- Any other error caused by the request itself (a 400 from upstream) is returned unchanged.
- Failover happens only before the first chunk reaches the client: the chain waits for a
  target's first chunk before it returns; a failure after that ends the stream
  (``StreamInterrupted``).
- Hedging (opt-in per alias): see ``gateway/stages/hedging.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from gateway.calls import Call, Note, Reply, Route
from gateway.errors import (
    AllTargetsFailed,
    ContentPolicyRejected,
    ContextWindowExceeded,
    GatewayError,
    ProviderBadResponse,
    ProviderUnavailable,
    StreamInterrupted,
    UpstreamRejected,
)
from gateway.pipeline import Next
from gateway.rules import Hedge, Resilience
from gateway.stages.attempts import Success, Tally, close_chunks
from gateway.stages.hedging import hedged_attempt
from gateway.stages.observed import Observations
from gateway.stages.queueing import CapacityQueue
from gateway.stages.retry_budget import RetryBudget

# Errors worth trying the same target again for (after a backoff). Not a timeout: the target
# just spent the request's time once; the next target is the better use of what is left.
SAME_TARGET_RETRY = (ProviderUnavailable, ProviderBadResponse)
SKIP_CODES = frozenset({"target_ejected", "target_at_capacity"})
POLL_CAPACITY_S = 0.05  # when a throttle gave no Retry-After


async def _rest(first: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    try:
        async for chunk in chunks:
            yield chunk
    except GatewayError as exc:
        if isinstance(exc, StreamInterrupted):
            raise
        raise StreamInterrupted(
            f"the upstream failed mid-stream: {exc.message}",
            detail=f"the upstream failed mid-stream: {exc.detail}",
        ) from exc


def weighted_order(group: tuple[tuple[str, int], ...], rng: random.Random) -> list[str]:
    """Weighted sampling without replacement (Efraimidis-Spirakis keys)."""
    if len(group) == 1:
        return [group[0][0]]
    keyed = sorted(group, key=lambda tw: rng.random() ** (1.0 / tw[1]), reverse=True)
    return [t for t, _ in keyed]


def order_of(route: Route, rng: random.Random) -> list[str]:
    if not route.groups:
        return list(route.targets)
    out: list[str] = []
    for group in route.groups:
        out.extend(weighted_order(group, rng))
    return out


class FallbackChain:
    name = "fallback"

    def __init__(
        self,
        stacks: Mapping[str, Next],
        windows: Mapping[str, int],
        policy: Resilience,
        budget: RetryBudget,
        observations: Observations,
        hedges: Mapping[str, Hedge] | None = None,
        retries: Mapping[str, int] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        queue: CapacityQueue | None = None,
    ) -> None:
        self._queue = queue
        self._stacks = dict(stacks)
        self._windows = dict(windows)
        self._policy = policy
        self._budget = budget
        self._observed = observations
        self._hedges = dict(hedges or {})
        self._retries = dict(retries or {})
        self._rng = rng or random.Random()
        self._sleep = sleep

    @property
    def observations(self) -> Observations:
        return self._observed

    @property
    def queued(self) -> int:
        """Calls waiting for a target with capacity right now (a gauge, read at scrape time)."""
        return 0 if self._queue is None else self._queue.waiting

    async def attempt(self, target: str, call: Call, tally: Tally) -> Success:
        """One try of one target, up to its first chunk. Raises the target's GatewayError."""
        started = time.perf_counter()
        try:
            reply = await self._stacks[target](call)
            try:
                first = await anext(reply.chunks)
            except StopAsyncIteration:
                raise ProviderBadResponse(f"target '{target}' sent an empty answer") from None
            except BaseException:
                await close_chunks(reply.chunks)
                raise
        except GatewayError as exc:
            if exc.code not in SKIP_CODES:
                self._observed.record(target, False, None, exc.kind)
            tally.failed(target, exc, started)
            raise
        self._observed.record(target, True, time.perf_counter() - started, None)
        return Success(target, reply, first)

    def may_call_upstream(self, call: Call, tally: Tally, retry: bool = True) -> bool:
        """Charge an upstream call to the request's allowance (shared with escalation and
        hedging); any call after the request's first also to the retry budget."""
        allowance = call.allowance
        if allowance.limit is None:
            allowance.limit = self._policy.max_attempts
        if allowance.used >= allowance.limit:
            return False
        if allowance.used == 0:
            self._budget.on_first_attempt()
        elif retry:
            if not self._budget.try_spend():
                tally.notes.append(Note("retry_budget", "exhausted"))
                return False
            tally.charged_retries += 1
        allowance.used += 1
        tally.upstream_calls += 1
        return True

    def give_back(self, call: Call, tally: Tally, retried: bool) -> None:
        """A charged call that was refused before reaching upstream (breaker, throttle)."""
        tally.upstream_calls -= 1
        call.allowance.used -= 1
        if retried and tally.charged_retries > 0:
            tally.charged_retries -= 1
            self._budget.refund()

    async def __call__(self, call: Call) -> Reply:
        assert call.route is not None, "the router slot must run before the fallback chain"
        if self._queue is None:
            return await self._walk(call)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._queue.max_wait_s
        queued_from: float | None = None
        while True:
            try:
                reply = await self._walk(call)
            except AllTargetsFailed as exc:
                at_capacity = [a for a in exc.attempts if a.error_kind == "TargetThrottled"]
                if not exc.attempts or len(at_capacity) != len(exc.attempts):
                    raise
                delay = min(a.retry_after_s or POLL_CAPACITY_S for a in at_capacity)
                if queued_from is None:
                    queued_from = loop.time()
                if not await self._queue.wait_turn(call.principal.priority, delay, deadline):
                    raise AllTargetsFailed(
                        call.route.alias, exc.attempts, status=429, retry_after_s=delay
                    ) from None
                continue
            if queued_from is not None:
                waited_ms = (loop.time() - queued_from) * 1000
                reply = reply.noted(Note("queued-ms", f"{waited_ms:.1f}"))
            return reply

    async def _walk(self, call: Call) -> Reply:
        assert call.route is not None
        tally = Tally()
        chain_started = time.perf_counter()
        hedge = self._hedges.get(call.route.alias)
        candidates = order_of(call.route, self._rng)
        min_window = 0
        last_client_error: UpstreamRejected | None = None
        i = 0
        while i < len(candidates):
            target = candidates[i]
            i += 1
            if self._windows.get(target, 0) <= min_window or target in tally.hedged:
                continue
            tries = 1 + self._retries.get(target, 0)
            for n in range(tries):
                if n > 0:
                    await self._sleep(self._backoff_s(n))
                if not self.may_call_upstream(call, tally, retry=n > 0):
                    return self._exhausted(call.route, tally, last_client_error)
                try:
                    if hedge is not None and hedge.enabled:
                        rest = [c for c in candidates[i:] if self._windows.get(c, 0) > min_window]
                        success = await hedged_attempt(self, target, rest, call, tally, hedge)
                    else:
                        success = await self.attempt(target, call, tally)
                except GatewayError as exc:
                    if exc.code in SKIP_CODES:
                        # Refused before any upstream call: give the charge back.
                        self.give_back(call, tally, retried=n > 0)
                        break
                    if isinstance(exc, ContextWindowExceeded):
                        min_window = max(min_window, self._windows.get(target, 0))
                        last_client_error = exc
                        break
                    if isinstance(exc, ContentPolicyRejected):
                        if self._policy.content_policy != "fallback":
                            raise
                        last_client_error = exc
                        break
                    if not exc.retryable:
                        raise
                    if not isinstance(exc, SAME_TARGET_RETRY):
                        break
                    continue
                # Everything from the first attempt to the first chunk is upstream time (failed
                # attempts, backoffs, hedge waits); the rest of the request is gateway overhead.
                success.reply.stats.upstream_first_s = time.perf_counter() - chain_started
                return self._answer(success, tally)
        return self._exhausted(call.route, tally, last_client_error)

    def _backoff_s(self, retry: int) -> float:
        cap = min(self._policy.backoff_max_s, self._policy.backoff_base_s * (2 ** (retry - 1)))
        return self._rng.uniform(0.0, cap)  # full jitter

    def _answer(self, success: Success, tally: Tally) -> Reply:
        notes = [
            Note("target", success.target),
            Note("attempts", str(max(1, tally.upstream_calls))),
            *tally.notes,
        ]
        reply = success.reply
        return Reply(
            chunks=_rest(success.first, reply.chunks),
            stats=reply.stats,
            notes=reply.notes + tuple(notes),
            headers=reply.headers,
        )

    def _exhausted(
        self, route: Route, tally: Tally, client_error: UpstreamRejected | None
    ) -> Reply:
        # Only request-caused refusals (e.g. every target with a large enough window said the
        # prompt is too long): the client's error, not an outage.
        if client_error is not None and all(
            a.error_kind in ("ContextWindowExceeded", "ContentPolicyRejected")
            for a in tally.attempts
        ):
            raise client_error
        raise AllTargetsFailed(route.alias, tuple(tally.attempts))
