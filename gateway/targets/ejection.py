"""Ejection: the per-target stage in front of the circuit breaker (``breaker.py``).

When the breaker refuses, the stage raises ``TargetEjected`` at once, without an upstream call,
so the fallback chain moves to the next target for free. Otherwise the attempt runs and its
verdict is recorded once:

- success: the first chunk arrived (the provider returns at the upstream's headers, so the
  stage watches the chunk stream; the fallback chain reads the first chunk before it answers);
- failure: ``ProviderUnavailable``, ``ProviderTimeout``, ``ProviderBadResponse`` (and any other
  upstream ``ProviderError``), raised by ``next_`` or by the stream before its first chunk, or
  a stream that ends empty. A health failure after the first chunk turns that attempt's success
  into a failure (``Breaker.record_late_failure``): still one verdict per attempt;
- ``ProviderAuthFailed`` (401/402/403, quota): our credentials will not heal in seconds, so the
  target is ejected at once for ``auth_failure_open_s``;
- no verdict: ``ProviderRateLimited`` (a capacity signal: the throttle's business),
  ``TargetThrottled`` (no upstream call was made), a cancelled attempt (hedge loser, client gone)
  or a reply closed before its first chunk. A probe slot held by such an attempt is released.
- ``UpstreamRejected`` and other ``ClientError``s: the target answered, the request was bad:
  the target is healthy.

Cost on the hot path with a closed breaker: one attribute read before the call, one wrapping
iterator, one ``record`` at the first chunk.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from enum import Enum

from gateway.calls import Call, Reply
from gateway.errors import (
    ClientError,
    GatewayError,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    TargetEjected,
    TargetThrottled,
)
from gateway.pipeline import Next
from gateway.targets.breaker import CLOSED, HALF_OPEN, Breaker, BreakerState

OnTransition = Callable[[str, BreakerState, BreakerState, str], None]


class Verdict(Enum):
    HEALTHY = "healthy"
    FAILURE = "failure"
    AUTH = "auth"
    NONE = "none"


HEALTHY, FAILURE, AUTH, NO_VERDICT = Verdict.HEALTHY, Verdict.FAILURE, Verdict.AUTH, Verdict.NONE


def verdict_of(exc: BaseException) -> Verdict:
    """What an error says about the target's health."""
    if isinstance(exc, ProviderAuthFailed):
        return AUTH
    if isinstance(exc, (ProviderRateLimited, TargetThrottled, TargetEjected)):
        return NO_VERDICT
    if isinstance(exc, ProviderError):
        return FAILURE
    if isinstance(exc, ClientError):
        return HEALTHY
    return NO_VERDICT  # cancellation, our own bugs: not the target's doing


class Ejection:
    name = "ejection"

    def __init__(
        self,
        target_name: str,
        breaker: Breaker,
        clock: Callable[[], float] = time.monotonic,
        on_transition: OnTransition | None = None,
    ) -> None:
        self._target = target_name
        self._breaker = breaker
        self._clock = clock
        self._on_transition = on_transition

    @property
    def breaker(self) -> Breaker:
        return self._breaker

    async def __call__(self, call: Call, next_: Next) -> Reply:
        breaker = self._breaker
        before = breaker.state
        probe = 0  # a half-open probe's ticket
        if before is not CLOSED:
            now = self._clock()
            allowed = breaker.allow(now)
            self._report(before)
            if not allowed:
                wait_s = breaker.retry_after_s(now)
                raise TargetEjected(
                    f"target '{self._target}' is ejected ({breaker.reason or 'probing'}); "
                    f"retry in {wait_s:.1f} s",
                    retry_after_s=wait_s,
                )
            if breaker.state is HALF_OPEN:
                probe = breaker.probe_epoch
        try:
            reply = await next_(call)
        except BaseException as exc:
            self.settle(verdict_of(exc), probe, exc)
            raise
        return reply.with_chunks(_Watched(reply.chunks, self, probe))

    def settle(self, verdict: Verdict, probe: int, exc: BaseException | None = None) -> None:
        """Record one attempt's verdict, known at or before its first chunk."""
        breaker = self._breaker
        before = breaker.state
        if verdict is HEALTHY or verdict is FAILURE:
            breaker.record(verdict is HEALTHY, self._clock(), probe=probe)
        elif verdict is AUTH:
            self._eject_auth(exc)
        elif probe:
            breaker.release_probe(probe)
        if breaker.state is not before:
            self._report(before)

    def settle_late(self, exc: BaseException) -> None:
        """A failure after the first chunk (already recorded as a success)."""
        verdict = verdict_of(exc)
        before = self._breaker.state
        if verdict is FAILURE:
            self._breaker.record_late_failure(self._clock())
        elif verdict is AUTH:
            self._eject_auth(exc)
        self._report(before)

    def _eject_auth(self, exc: BaseException | None) -> None:
        now = self._clock()
        detail = exc.detail if isinstance(exc, GatewayError) else "refused"
        self._breaker.eject(
            now,
            now + self._breaker.policy.auth_failure_open_s,
            f"auth: target '{self._target}' refused our credentials or quota: {detail[:160]}",
        )

    def _report(self, before: BreakerState) -> None:
        after = self._breaker.state
        if after is not before and self._on_transition is not None:
            self._on_transition(self._target, before, after, self._breaker.last_change)


_WAITING, _FLOWING, _DONE = 0, 1, 2


class _Watched:
    """The attempt's chunks: the verdict at the first chunk, a late failure after it."""

    __slots__ = ("_inner", "_probe", "_stage", "_step")

    def __init__(self, inner: AsyncIterator[bytes], stage: Ejection, probe: int) -> None:
        self._inner = inner
        self._stage = stage
        self._probe = probe
        self._step = _WAITING

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> bytes:
        step = self._step
        if step == _FLOWING:
            try:
                return await self._inner.__anext__()
            except GatewayError as exc:
                self._step = _DONE
                self._stage.settle_late(exc)
                raise
        if step == _DONE:
            return await self._inner.__anext__()
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            self._step = _DONE
            self._stage.settle(FAILURE, self._probe)  # an empty answer
            raise
        except BaseException as exc:
            self._step = _DONE
            self._stage.settle(verdict_of(exc), self._probe, exc)
            raise
        self._step = _FLOWING
        self._stage.settle(HEALTHY, self._probe)
        return chunk

    async def aclose(self) -> None:
        if self._step == _WAITING:
            # Closed before its first chunk: the attempt was abandoned, not judged.
            self._step = _DONE
            self._stage.settle(NO_VERDICT, self._probe)
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()
