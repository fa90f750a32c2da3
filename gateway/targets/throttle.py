"""Throttle: keep one target under its provider's RPM/TPM, and off it while it says "wait".

Policy:

- With ``limits.rpm`` / ``limits.tpm`` set, each attempt takes 1 request and its estimated tokens
  (``estimate_tokens``: prompt characters / 4 + 4 per message + the output cap) from two token
  buckets whose capacity is the per-minute limit and which refill at limit / 60 per second. When
  a bucket cannot pay, the attempt is refused with ``TargetThrottled`` before any upstream call,
  and the fallback chain moves to the next target instead of earning a 429.
- An upstream 429 (``ProviderRateLimited``, from ``next_`` or from the stream before its first
  chunk) blocks the target for its ``Retry-After`` (1 s when absent); the error goes on.
- After an answer, the upstream's ``x-ratelimit-*`` headers tighten the buckets to what the
  provider says remains (it sees every replica's traffic, we see only ours); a remaining count
  of 0 blocks the target until the matching reset. Headers never loosen the buckets.
- No settle: tokens estimated but not used are not given back. Providers count ``max_tokens``
  against TPM when a request starts (OpenAI does), so the estimate is what the upstream itself
  charges; the upstream's remaining-tokens header corrects any drift.
- The buckets are per process; with several replicas, configure each replica's share of the
  limit (the upstream headers and 429s still bound the sum).

A target with no limits configured pays one clock read and one comparison per attempt (and one
wrapping iterator for a stream).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import NoReturn

from gateway.calls import Call, Reply
from gateway.errors import ProviderRateLimited, TargetThrottled
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.rules import TargetLimits
from gateway.targets.buckets import TokenBucket

DEFAULT_OUTPUT_CAP = 256  # tokens assumed for an answer without max_tokens
TOKENS_PER_MESSAGE = 4  # role and framing
CHARS_PER_TOKEN = 4
DEFAULT_BLOCK_S = 1.0  # a 429 without Retry-After

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration_s(value: str) -> float | None:
    """Seconds in an OpenAI reset header ("1s", "6m0s", "20ms", "0.5s", "1h2m3s") or a bare
    number of seconds ("30", as in Retry-After). None when it is not one of those."""
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    total = 0.0
    pos = 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) else None


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """The upstream's own view of its rate limits, from one answer's headers."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None


def read_limits(headers: tuple[tuple[str, str], ...]) -> UpstreamLimits:
    """``x-ratelimit-*`` and ``retry-after`` from lower-case (name, value) pairs."""
    found = dict(headers)
    reset_requests = found.get("x-ratelimit-reset-requests")
    reset_tokens = found.get("x-ratelimit-reset-tokens")
    retry_after = found.get("retry-after")
    return UpstreamLimits(
        remaining_requests=_int_or_none(found.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_int_or_none(found.get("x-ratelimit-remaining-tokens")),
        reset_requests_s=None if reset_requests is None else parse_duration_s(reset_requests),
        reset_tokens_s=None if reset_tokens is None else parse_duration_s(reset_tokens),
        retry_after_s=None if retry_after is None else parse_duration_s(retry_after),
    )


def _text_chars(content: object) -> int:
    if isinstance(content, str):
        return len(content)
    chars = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
            elif isinstance(part, str):
                chars += len(part)
    return chars


def estimate_tokens(call: Call) -> int:
    """A rough upper-bound guess of the tokens one attempt costs (prompt + output cap)."""
    request = call.request
    if isinstance(request, ChatRequest):
        chars = sum(_text_chars(m.content) for m in request.messages)
        prompt = -(-chars // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(request.messages)
        return prompt + (request.output_cap or DEFAULT_OUTPUT_CAP) * (request.n or 1)
    given = request.input
    if isinstance(given, str):
        return -(-len(given) // CHARS_PER_TOKEN)
    tokens = 0
    for item in given:
        if isinstance(item, str):
            tokens += -(-len(item) // CHARS_PER_TOKEN)
        elif isinstance(item, int):
            tokens += 1  # already token ids
        else:
            tokens += len(item)
    return tokens


class Throttle:
    name = "throttle"

    def __init__(
        self,
        target_name: str,
        limits: TargetLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target_name
        self._clock = clock
        self._rpm = TokenBucket(limits.rpm, limits.rpm / 60.0) if limits.rpm else None
        self._tpm = TokenBucket(limits.tpm, limits.tpm / 60.0) if limits.tpm else None
        self._blocked_until = 0.0
        self._blocked_why = ""

    @property
    def blocked_until(self) -> float:
        return self._blocked_until

    def headroom(self) -> float:
        """The share of this target's RPM/TPM still free now: the lower of the two buckets'
        levels over their capacity; 1.0 without limits, 0.0 while blocked. When to use: work
        that must leave the last share of a provider's limit to interactive calls (batch
        lines, ``gateway/jobs/runner.py``)."""
        now = self._clock()
        if now < self._blocked_until:
            return 0.0
        buckets = [b for b in (self._rpm, self._tpm) if b is not None]
        return min((b.level(now) / b.capacity for b in buckets), default=1.0)

    async def __call__(self, call: Call, next_: Next) -> Reply:
        now = self._clock()
        if now < self._blocked_until:
            self._refuse(self._blocked_until - now, self._blocked_why)
        if self._rpm is not None or self._tpm is not None:
            self._take(call, now)
        try:
            reply = await next_(call)
        except ProviderRateLimited as exc:
            self.on_rate_limited(exc)
            raise
        if reply.headers:
            self.tighten(read_limits(reply.headers), self._clock())
        if not call.stream:
            return reply  # a whole answer was read before the provider returned: no 429 left
        return reply.with_chunks(_Watch429(reply.chunks, self))

    def _take(self, call: Call, now: float) -> None:
        rpm, tpm = self._rpm, self._tpm
        tokens = estimate_tokens(call) if tpm is not None else 0
        wait_s = 0.0
        why = ""
        if rpm is not None:
            wait_s = rpm.time_until(1, now)
            why = "requests-per-minute limit"
        if tpm is not None:
            tpm_wait_s = tpm.time_until(tokens, now)
            if tpm_wait_s > wait_s:
                wait_s, why = tpm_wait_s, "tokens-per-minute limit"
        if wait_s > 0:
            self._refuse(wait_s, why)
        # Both can pay (checked above at the same instant): take from both or from neither.
        if rpm is not None:
            rpm.try_take(1, now)
        if tpm is not None:
            tpm.try_take(tokens, now)

    def _refuse(self, wait_s: float, why: str) -> NoReturn:
        raise TargetThrottled(
            f"target '{self._target}' is at capacity ({why}); retry in {wait_s:.2f} s",
            retry_after_s=wait_s,
        )

    def block(self, until: float, why: str) -> None:
        if until > self._blocked_until:
            self._blocked_until = until
            self._blocked_why = why

    def on_rate_limited(self, exc: ProviderRateLimited) -> None:
        wait_s = DEFAULT_BLOCK_S if exc.retry_after_s is None else exc.retry_after_s
        self.block(self._clock() + wait_s, "the upstream answered 429")

    def tighten(self, seen: UpstreamLimits, now: float) -> None:
        """Apply an answer's rate-limit headers: lower the buckets, block on a zero."""
        if seen.remaining_requests is not None:
            if self._rpm is not None:
                self._rpm.set_available(seen.remaining_requests, now)
            if seen.remaining_requests == 0:
                wait_s = _first(seen.reset_requests_s, seen.retry_after_s, DEFAULT_BLOCK_S)
                self.block(now + wait_s, "the upstream has no requests left")
        if seen.remaining_tokens is not None:
            if self._tpm is not None:
                self._tpm.set_available(seen.remaining_tokens, now)
            if seen.remaining_tokens == 0:
                wait_s = _first(seen.reset_tokens_s, seen.retry_after_s, DEFAULT_BLOCK_S)
                self.block(now + wait_s, "the upstream has no tokens left")


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    return DEFAULT_BLOCK_S


class _Watch429:
    """Pass the chunks on; a 429 before the first chunk blocks the target like one from next_."""

    __slots__ = ("_inner", "_started", "_throttle")

    def __init__(self, inner: AsyncIterator[bytes], throttle: Throttle) -> None:
        self._inner = inner
        self._throttle = throttle
        self._started = False

    def __aiter__(self) -> _Watch429:
        return self

    async def __anext__(self) -> bytes:
        if self._started:
            return await self._inner.__anext__()
        self._started = True
        try:
            return await self._inner.__anext__()
        except ProviderRateLimited as exc:
            self._throttle.on_rate_limited(exc)
            raise

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()
