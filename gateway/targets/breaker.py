"""The circuit breaker of one target: a pure state machine (no I/O; the time is passed in).

Policy (the numbers come from ``rules.Breaker``)::

    closed --(ratio or consecutive failures)--> open --(open_until passed)--> half_open
    half_open --(a probe succeeds)--> closed      half_open --(a probe fails)--> open (longer)
    any --(eject: auth failure, admin, a peer replica)--> open      any --(restore)--> closed

- **Closed** counts calls and failures in a sliding window of ``window_s`` made of
  ``WINDOW_BUCKETS`` buckets (O(1) memory, at most one bucket of slack). It opens when the
  window holds at least ``min_calls`` calls and ``failure_ratio`` of them failed, or after
  ``consecutive_failures`` failures in a row. The minimum call count is there because a ratio
  over three calls is noise: two unlucky timeouts on a quiet target must not eject it. The
  consecutive count catches a target that died outright while traffic is too thin to reach
  ``min_calls`` in one window. Both are checked after every verdict (a success that brings the
  window up to ``min_calls`` can trip the ratio).
- **Open** refuses every call until ``open_until``, an absolute time (stored, not a TTL: one
  comparison per call, and the same value can be shared with other replicas). The first open
  lasts ``open_s``.
- **Half-open** lets at most ``half_open_probes`` calls through at once. They are probes: a
  recovering upstream is fragile, and letting the whole queue in at the first tick would knock
  it over again (and cost every one of those clients a failed attempt). A probe success closes
  the breaker and starts a fresh window; a probe failure re-opens it for twice the previous
  open period, capped at ``max_open_s`` (default ``max(open_s, 60 s)``: 5, 10, 20, 40, 60, 60 s
  with the default ``open_s``), so a target that stays down is probed less and less often.
  In half-open only verdicts of this half-open period's probes move the state (``allow``
  hands out the period number, ``probe_epoch``): a late answer from a call admitted before the
  breaker opened, or from an earlier period's probe, says nothing about the target now and
  cannot free a slot a current probe holds.
- A probe slot whose holder vanished without a verdict (a dropped reply that was never closed)
  is reclaimed after ``probe_lease_s`` (set it above the target's connect + first-token
  deadlines), so a leak cannot wedge a target in half-open forever.
- **Eject** (credentials refused, the admin API, a peer replica's open) opens the breaker until
  a given time. It never shortens an open period; ``restore`` closes the breaker at once.

Verdicts come from ``gateway.targets.ejection``: which errors are failures is decided there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.rules import Breaker as BreakerPolicy

WINDOW_BUCKETS = 10  # the window slides by a tenth of window_s
MAX_OPEN_S = 60.0  # re-opens double the open period up to this (or open_s if larger)
HALF_OPEN_RETRY_AFTER_S = 1.0  # Retry-After hint while the probes are out
PROBE_LEASE_S = 60.0
_NEVER = -(2**62)  # bucket index before the first record


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What the breaker looks like at one instant (for the admin API, metrics, the board).

    Times are on the clock the breaker is fed (monotonic seconds). ``state`` is the effective
    state: an open breaker whose ``open_until`` has passed shows as half-open.
    """

    state: BreakerState
    reason: str | None  # why it opened (kept while half-open)
    opened_at: float | None
    open_until: float | None
    calls: int  # in the window
    failures: int  # in the window
    error_ratio: float
    consecutive_failures: int
    probes_in_flight: int
    transitions: int
    restored_at: float | None  # last restore() (manual close), for sharing across replicas


class Breaker:
    """One target's breaker. Not thread-safe: one event loop owns it."""

    __slots__ = (
        "_bucket_s",
        "_calls",
        "_calls_total",
        "_consecutive",
        "_epoch",
        "_epochs",
        "_fails",
        "_fails_total",
        "_head",
        "_in_flight",
        "_max_open_s",
        "_open_until",
        "_opened_at",
        "_policy",
        "_probe_at",
        "_probe_lease_s",
        "_reason",
        "_restored_at",
        "_state",
        "_streak",
        "_transitions",
        "last_change",
    )

    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        max_open_s: float | None = None,
        probe_lease_s: float = PROBE_LEASE_S,
    ) -> None:
        self._policy = policy
        self._max_open_s = max(policy.open_s, MAX_OPEN_S if max_open_s is None else max_open_s)
        self._probe_lease_s = probe_lease_s
        self._bucket_s = policy.window_s / WINDOW_BUCKETS
        self._calls = [0] * WINDOW_BUCKETS
        self._fails = [0] * WINDOW_BUCKETS
        self._epochs = [_NEVER] * WINDOW_BUCKETS  # bucket index each slot holds (snapshot only)
        self._head = _NEVER
        self._calls_total = 0
        self._fails_total = 0
        self._consecutive = 0
        self._state = CLOSED
        self._reason: str | None = None
        self._opened_at: float | None = None
        self._open_until = 0.0
        self._streak = 0  # re-opens since the last close (the open period doubles with it)
        self._in_flight = 0
        self._epoch = 0  # half-open periods so far: a probe's ticket
        self._probe_at = 0.0
        self._transitions = 0
        self._restored_at: float | None = None
        self.last_change = "closed"  # why the last transition happened (for logs)

    @property
    def policy(self) -> BreakerPolicy:
        return self._policy

    @property
    def state(self) -> BreakerState:
        """The committed state (open -> half-open happens in ``allow``); see ``snapshot``."""
        return self._state

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def probe_epoch(self) -> int:
        """The current half-open period's number: after ``allow`` returned True in half-open,
        the caller's probe ticket for ``record(..., probe=)`` and ``release_probe``."""
        return self._epoch

    # -- admission ---------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """May a call go to the target now? In half-open, True reserves a probe slot."""
        state = self._state
        if state is CLOSED:
            return True
        if state is OPEN:
            if now < self._open_until:
                return False
            self._state = HALF_OPEN
            self._transitions += 1
            self._epoch += 1
            self._in_flight = 0
            self.last_change = "open period over: probing"
        if self._in_flight < self._policy.half_open_probes:
            self._in_flight += 1
            self._probe_at = now
            return True
        if now - self._probe_at >= self._probe_lease_s:
            # Every slot is held past its lease: their holders are gone; start over.
            self._in_flight = 1
            self._probe_at = now
            return True
        return False

    def release_probe(self, probe: int | None = None) -> None:
        """A probe ended without a verdict (cancelled, throttled before the upstream call).
        ``probe``: its ticket (``probe_epoch`` when admitted); None: the current period."""
        if (
            self._state is HALF_OPEN
            and self._in_flight > 0
            and (probe is None or probe == self._epoch)
        ):
            self._in_flight -= 1

    def retry_after_s(self, now: float) -> float:
        """How long a refused caller should wait before it may be let through."""
        if self._state is OPEN and now < self._open_until:
            return self._open_until - now
        return HALF_OPEN_RETRY_AFTER_S if self._state is not CLOSED else 0.0

    # -- verdicts ----------------------------------------------------------------------------

    def record(self, ok: bool, now: float, *, probe: int = 0) -> None:
        """One attempt's verdict. ``probe``: its ticket if it was admitted while half-open
        (``probe_epoch`` then), 0 if it was admitted while closed."""
        state = self._state
        if state is CLOSED:
            slot = self._slot(now)
            self._calls[slot] += 1
            self._calls_total += 1
            if ok:
                self._consecutive = 0
                if self._fails_total:  # reaching min_calls with a success can trip the ratio
                    self._check(now)
                return
            self._fails[slot] += 1
            self._fails_total += 1
            self._consecutive += 1
            self._check(now)
        elif state is HALF_OPEN and probe == self._epoch:
            if self._in_flight > 0:
                self._in_flight -= 1
            if ok:
                self._close(now, "probe succeeded")
            else:
                self._streak += 1
                open_s = min(self._max_open_s, self._policy.open_s * 2.0**self._streak)
                self._open(now, now + open_s, f"probe failed (open {open_s:g} s)")
        # Open, or a straggler while half-open: says nothing about the target now.

    def record_late_failure(self, now: float) -> None:
        """An attempt already recorded as a success failed mid-stream: make it one failure."""
        if self._state is not CLOSED:
            return
        slot = self._slot(now)
        if self._fails[slot] >= self._calls[slot]:  # its success is in an older bucket
            self._calls[slot] += 1
            self._calls_total += 1
        self._fails[slot] += 1
        self._fails_total += 1
        self._consecutive += 1
        self._check(now)

    # -- operator and peer actions -----------------------------------------------------------

    def eject(self, now: float, until: float, reason: str) -> None:
        """Open until ``until`` (auth failure, admin, a peer). Never shortens an open period."""
        if until <= now:
            return
        if self._state is OPEN and now < self._open_until:
            if until > self._open_until:
                self._open_until = until
                self._reason = reason
            return
        self._open(now, until, reason)

    def restore(self, now: float) -> None:
        """Close at once (manual): a fresh window, no probing."""
        self._restored_at = now
        self._close(now, "restored")

    # -- inspection --------------------------------------------------------------------------

    def snapshot(self, now: float) -> BreakerSnapshot:
        state = self._state
        if state is OPEN and now >= self._open_until:
            state = HALF_OPEN
        calls, fails = self._window(now)
        return BreakerSnapshot(
            state=state,
            reason=self._reason,
            opened_at=self._opened_at,
            open_until=None if self._opened_at is None else self._open_until,
            calls=calls,
            failures=fails,
            error_ratio=fails / calls if calls else 0.0,
            consecutive_failures=self._consecutive,
            probes_in_flight=self._in_flight if self._state is HALF_OPEN else 0,
            transitions=self._transitions,
            restored_at=self._restored_at,
        )

    # -- internals ---------------------------------------------------------------------------

    def _check(self, now: float) -> None:
        policy = self._policy
        if self._consecutive >= policy.consecutive_failures:
            reason = f"{self._consecutive} consecutive failures"
        elif (
            self._calls_total >= policy.min_calls
            and self._fails_total >= policy.failure_ratio * self._calls_total
        ):
            reason = (
                f"failure ratio {self._fails_total / self._calls_total:.2f} over "
                f"{self._calls_total} calls in {policy.window_s:g} s"
            )
        else:
            return
        self._streak = 0
        self._open(now, now + policy.open_s, reason)

    def _open(self, now: float, until: float, reason: str) -> None:
        if self._state is not OPEN:
            self._transitions += 1
        self._state = OPEN
        self._opened_at = now
        self._open_until = until
        self._reason = reason
        self._in_flight = 0
        self.last_change = reason

    def _close(self, now: float, why: str) -> None:
        if self._state is not CLOSED:
            self._transitions += 1
        self._state = CLOSED
        self._reason = None
        self._opened_at = None
        self._open_until = 0.0
        self._streak = 0
        self._in_flight = 0
        self._consecutive = 0
        self._calls = [0] * WINDOW_BUCKETS
        self._fails = [0] * WINDOW_BUCKETS
        self._epochs = [_NEVER] * WINDOW_BUCKETS
        self._calls_total = 0
        self._fails_total = 0
        self._head = _NEVER
        self.last_change = why

    def _slot(self, now: float) -> int:
        """The slot of the bucket holding ``now``, expiring the buckets that slid out."""
        idx = int(now // self._bucket_s)
        head = self._head
        if idx > head:
            if idx - head >= WINDOW_BUCKETS:
                if self._calls_total:
                    self._calls = [0] * WINDOW_BUCKETS
                    self._fails = [0] * WINDOW_BUCKETS
                    self._calls_total = 0
                    self._fails_total = 0
            else:
                for k in range(head + 1, idx + 1):
                    s = k % WINDOW_BUCKETS
                    self._calls_total -= self._calls[s]
                    self._fails_total -= self._fails[s]
                    self._calls[s] = 0
                    self._fails[s] = 0
            self._head = idx
            self._epochs[idx % WINDOW_BUCKETS] = idx
        # A clock that stepped back lands in the newest bucket.
        return self._head % WINDOW_BUCKETS

    def _window(self, now: float) -> tuple[int, int]:
        oldest = max(int(now // self._bucket_s), self._head) - WINDOW_BUCKETS + 1
        calls = fails = 0
        for s in range(WINDOW_BUCKETS):
            if self._epochs[s] >= oldest:
                calls += self._calls[s]
                fails += self._fails[s]
        return calls, fails
