"""Pacing: stay inside the provider's tokens- and requests-per-minute without meeting a 429.

Policy:
- A rolling 60-second window of what this worker sent (tokens charged when a call starts, as
  providers count them; corrected to the real usage when the answer comes back), plus what the
  ``x-ratelimit-*`` headers say others used of a shared limit.
- Before a call, its share of the limit after it is sent decides the wait, graduated: under 85%
  none; from 85% half the time the limit needs to refill that call; from 95% the whole of it;
  a call that would pass 98% waits until enough of the window has expired. RPM the same way.
- Concurrency adapts: it halves after a 429 and grows back by one per answer (near the limit
  the waits above hold the rate; fewer calls in flight would only lose throughput).
- Retries (429, 5xx, connection errors) back off with full jitter on a 1-2-4-8-16 s ladder,
  never sooner than the server's Retry-After.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

WINDOW_S = 60.0
STEPS = (0.85, 0.95, 0.98)
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


def backoff_s(attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
    """Full jitter on the 1-2-4-8-16 s ladder (attempt 0 = first retry), at least Retry-After."""
    cap = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
    wait = rng.uniform(0.0, cap)
    return max(wait, retry_after_s or 0.0)


def parse_reset_s(text: str | None) -> float | None:
    """OpenAI's reset durations (``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``) in seconds."""
    if not text:
        return None
    text = text.strip()
    try:
        if text.endswith("ms"):
            return float(text[:-2]) / 1000.0
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if match is None or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def graduated_wait_s(share_after: float, refill_s: float) -> float:
    """The pause before a call that brings the window to ``share_after`` of the limit."""
    if share_after < STEPS[0]:
        return 0.0
    if share_after < STEPS[1]:
        return 0.5 * refill_s
    return refill_s


class Entry:
    """One event in a window; its amount can be corrected while it is in the window."""

    __slots__ = ("alive", "amount", "at")

    def __init__(self, at: float, amount: float) -> None:
        self.at = at
        self.amount = amount
        self.alive = True


@dataclass
class Window:
    """A rolling sum over the last 60 s of events (appended in time order)."""

    events: deque[Entry] = field(default_factory=deque)
    total: float = 0.0

    def add(self, now: float, amount: float) -> Entry:
        entry = Entry(now, amount)
        self.events.append(entry)
        self.total += amount
        return entry

    def adjust(self, entry: Entry, amount: float) -> None:
        """Set an event's amount (a no-op once it has left the window)."""
        if entry.alive:
            self.total += amount - entry.amount
            entry.amount = amount

    def used(self, now: float) -> float:
        while self.events and self.events[0].at <= now - WINDOW_S:
            old = self.events.popleft()
            old.alive = False
            self.total -= old.amount
        return max(0.0, self.total)

    def free_at(self, now: float, need: float, limit: float) -> float:
        """When ``used + need <= limit`` holds again (``now`` if it already does)."""
        used = self.used(now)
        if used + need <= limit:
            return now
        for entry in self.events:
            used -= entry.amount
            if used + need <= limit:
                return entry.at + WINDOW_S
        return now + WINDOW_S


@dataclass(frozen=True, slots=True)
class Booking:
    """A call's place in the windows, to correct when its real usage is known."""

    at: float
    tokens: Entry
    request: Entry


@dataclass
class Pacer:
    """One worker's view of its limits. Not thread-safe: one event loop owns it."""

    tpm: float | None
    rpm: float | None
    max_concurrency: int
    tokens: Window = field(default_factory=Window)
    requests: Window = field(default_factory=Window)
    foreign_tokens: float = 0.0  # used by others of a shared limit, from the headers
    foreign_requests: float = 0.0
    shared_tokens: float = 0.0  # used by other workers of this job, from the checkpoint store
    shared_requests: float = 0.0
    concurrency: int = 0
    rate_limited: int = 0
    blocked_until: float = 0.0  # a server said nothing remains until then
    foreign_until: float = float("inf")  # the headers' view of others holds until the reset

    def __post_init__(self) -> None:
        self.concurrency = self.concurrency or self.max_concurrency

    def others_tokens(self, now: float) -> float:
        """What others use of the token limit: the headers' view until its reset, and the
        other workers' from the store, whichever is more."""
        header = self.foreign_tokens if now < self.foreign_until else 0.0
        return max(header, self.shared_tokens)

    def others_requests(self, now: float) -> float:
        header = self.foreign_requests if now < self.foreign_until else 0.0
        return max(header, self.shared_requests)

    def seed(self, events: list[tuple[float, float]]) -> None:
        """This worker's own calls of the last minute (from the store, after a restart)."""
        for at, tokens in sorted(events):
            self.sent(at, tokens)

    def share(self, now: float, extra_tokens: float = 0.0) -> float:
        """The highest of the token and request shares of the limits, with ``extra`` added."""
        shares = [0.0]
        if self.tpm:
            shares.append(
                (self.tokens.used(now) + self.others_tokens(now) + extra_tokens) / self.tpm
            )
        if self.rpm:
            shares.append((self.requests.used(now) + self.others_requests(now) + 1) / self.rpm)
        return max(shares)

    def wait_s(self, now: float, tokens: float, graduated: bool = True) -> float:
        """How long to wait before sending a call estimated at ``tokens``; with ``graduated``
        off, only until the call fits under the 98% ceiling (the check right before sending)."""
        waits = [max(0.0, self.blocked_until - now)]
        if self.tpm:
            ceiling = STEPS[2] * self.tpm - self.others_tokens(now)
            start = self._until(now, self.tokens.free_at(now, tokens, ceiling), self.foreign_tokens)
            used = self.tokens.used(now) + self.others_tokens(now) + tokens
            refill = tokens / (self.tpm / WINDOW_S)
            step = graduated_wait_s(used / self.tpm, refill) if graduated else 0.0
            waits.append(max(start - now, step))
        if self.rpm:
            ceiling = STEPS[2] * self.rpm - self.others_requests(now)
            start = self._until(
                now, self.requests.free_at(now, 1.0, ceiling), self.foreign_requests
            )
            used = self.requests.used(now) + self.others_requests(now) + 1
            step = graduated_wait_s(used / self.rpm, WINDOW_S / self.rpm) if graduated else 0.0
            waits.append(max(start - now, step))
        return max(waits)

    def _until(self, now: float, start: float, foreign: float) -> float:
        """What others used (by the headers) is gone at their reset: check again then."""
        if foreign > 0 and now < self.foreign_until:
            return min(start, self.foreign_until)
        return start

    def sent(self, now: float, tokens: float) -> Booking:
        return Booking(now, self.tokens.add(now, tokens), self.requests.add(now, 1.0))

    def settle(self, booking: Booking, actual: float) -> None:
        """Replace a call's estimate by its real usage (charged when it was sent)."""
        self.tokens.adjust(booking.tokens, actual)

    def refund(self, booking: Booking) -> None:
        """A refused call (429, error before the answer) used nothing."""
        self.tokens.adjust(booking.tokens, 0.0)
        self.requests.adjust(booking.request, 0.0)

    def observe(self, now: float, headers: Mapping[str, str]) -> None:
        """Learn from ``x-ratelimit-*``: a lower limit, what others use of a shared one, and
        (remaining 0) no call before the reset."""
        for kind in ("tokens", "requests"):
            limit = _num(headers.get(f"x-ratelimit-limit-{kind}"))
            remaining = _num(headers.get(f"x-ratelimit-remaining-{kind}"))
            if limit is None or remaining is None:
                continue
            reset = parse_reset_s(headers.get(f"x-ratelimit-reset-{kind}"))
            if reset is not None:
                self.foreign_until = now + reset
                if remaining <= 0:
                    self.blocked_until = max(self.blocked_until, now + reset)
            window = self.tokens if kind == "tokens" else self.requests
            mine = window.used(now)
            others = max(0.0, (limit - remaining) - mine)
            if kind == "tokens":
                self.tpm = min(self.tpm, limit) if self.tpm else limit
                self.foreign_tokens = others
            else:
                self.rpm = min(self.rpm, limit) if self.rpm else limit
                self.foreign_requests = others

    def adapt(self, now: float, limited: bool) -> None:
        """AIMD on concurrency: halve on a 429, grow by one per answer. Being close to the
        limit is the goal, not a fault: the waits above hold the rate there."""
        if limited:
            self.rate_limited += 1
            self.concurrency = max(1, self.concurrency // 2)
        else:
            self.concurrency = min(self.max_concurrency, self.concurrency + 1)


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
