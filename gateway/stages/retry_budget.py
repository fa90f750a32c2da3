"""Retry budget: retries may add at most ``ratio`` to the upstream calls.

Policy: every request earns ``ratio`` of a token; every retry of the same target and every hedge
spends a whole token (hops to the next target do not: see ``fallback.py``); a floor of
``min_per_s`` tokens a second lets a quiet gateway still retry. The balance is capped, so a long
calm spell cannot bank an unbounded storm. When the budget is empty a request stops at the
attempts it has made: an outage costs the providers at most (1 + ratio) calls per request instead
of ``max_attempts``. It is per process, like the breakers' local state (a shared budget would put
a Redis round trip on every failure, exactly when Redis matters least).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RetryBudget:
    def __init__(
        self,
        ratio: float,
        min_per_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ratio = ratio
        self._min_per_s = min_per_s
        self._clock = clock
        self.capacity = max(10.0, 10.0 * min_per_s)
        self._balance = self.capacity
        self._updated = clock()
        self.spent = 0
        self.refused = 0

    def _refill(self) -> None:
        now = self._clock()
        if now > self._updated:
            self._balance = min(
                self.capacity, self._balance + (now - self._updated) * self._min_per_s
            )
            self._updated = now

    def on_first_attempt(self) -> None:
        self._balance = min(self.capacity, self._balance + self._ratio)

    def try_spend(self) -> bool:
        self._refill()
        if self._balance >= 1.0:
            self._balance -= 1.0
            self.spent += 1
            return True
        self.refused += 1
        return False

    def refund(self) -> None:
        """A spent attempt that never reached upstream (the target refused it locally)."""
        self._balance = min(self.capacity, self._balance + 1.0)
        self.spent -= 1

    @property
    def balance(self) -> float:
        self._refill()
        return self._balance
