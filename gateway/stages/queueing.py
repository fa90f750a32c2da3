"""Backpressure: requests that find every target at capacity wait their turn, by priority.

Policy: when every target of a route refused a call locally because it is at its provider's
RPM/TPM limit (the throttles), the call does not fail at once: it waits in a bounded queue until
the soonest target should have capacity again, then tries again. Waiters are served in priority
order (``interactive`` before ``standard`` before ``batch``, then first come first served): a
waiter does not try again while one of higher rank is still waiting ahead of it. A call that
cannot start before its queue deadline (``governance.queue_max_wait_s``), or that finds the
queue full (``queue_max_waiting``), gets 429 with Retry-After instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

RANKS = {"interactive": 0, "standard": 1, "batch": 2}
POLL_S = 0.005


class CapacityQueue:
    def __init__(self, max_waiting: int, max_wait_s: float) -> None:
        self.max_waiting = max_waiting
        self.max_wait_s = max_wait_s
        self._heap: list[tuple[int, int]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return len(self._heap)

    async def wait_turn(self, priority: str, delay_s: float, deadline: float) -> bool:
        """Wait ``delay_s`` and for every higher-ranked waiter ahead; False: give up now."""
        loop = asyncio.get_running_loop()
        if len(self._heap) >= self.max_waiting or loop.time() + delay_s > deadline:
            return False
        entry = (RANKS.get(priority, 1), next(self._seq))
        heapq.heappush(self._heap, entry)
        try:
            await asyncio.sleep(delay_s)
            while self._heap and self._heap[0] < entry:
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(POLL_S)
            return True
        finally:
            self._heap.remove(entry)
            heapq.heapify(self._heap)
