"""A token bucket: pure and O(1), the time passed in (monotonic seconds).

Use it for a provider's per-minute limits (RPM, TPM): ``capacity`` is the limit and
``refill_per_s`` the limit over 60 s, so a full minute's allowance can be spent in a burst (as
providers allow) and then trickles back. A request larger than the whole capacity is clamped to
it: it waits for a full bucket and then empties it, instead of waiting forever.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("_level", "_updated", "capacity", "refill_per_s")

    def __init__(self, capacity: float, refill_per_s: float) -> None:
        if capacity <= 0 or refill_per_s <= 0:
            raise ValueError("a token bucket needs a positive capacity and refill rate")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._level = self.capacity  # starts full
        self._updated: float | None = None

    def level(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self._level

    def try_take(self, n: float, now: float) -> bool:
        """Take ``n`` tokens if they are all there; False (and take nothing) otherwise."""
        self._refill(now)
        n = min(n, self.capacity)
        if self._level >= n:
            self._level -= n
            return True
        return False

    def time_until(self, n: float, now: float) -> float:
        """Seconds until ``n`` tokens are available (0.0: now)."""
        self._refill(now)
        missing = min(n, self.capacity) - self._level
        return missing / self.refill_per_s if missing > 0 else 0.0

    def set_available(self, n: float, now: float) -> None:
        """Lower the level to ``n`` (e.g. the upstream's own remaining count); never raises it."""
        self._refill(now)
        self._level = min(self._level, max(0.0, float(n)))

    def _refill(self, now: float) -> None:
        updated = self._updated
        if updated is None:
            self._updated = now
        elif now > updated:
            self._level = min(self.capacity, self._level + (now - updated) * self.refill_per_s)
            self._updated = now
        # A clock that stepped back refills nothing (and is not remembered).
