"""Settles, batched and pipelined off the request path.

When to use: the budget stage hands every finished call's reservation and actual usage to
``Settler.add``; nothing on the request path waits for it. Policy: the first settle after a quiet
moment starts one tracked background task (the app's ``Spawner``), which waits ``linger_s``
(2 ms) so that the settles of concurrent calls share it, then sends them in one script call
(``Ledger.settle_many``, at most ``max_batch`` per call) until none are left. At 5,000 calls/s
that is about one Redis round trip per ten calls instead of one per call.

If Redis cannot be reached, the batch is dropped: its reservations expire on their own and the
calls' spend is lost from the budgets (under-counted, never over-counted); the usage report keeps
it. At shutdown the task is cancelled and sends what it holds once more before it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from gateway.governance.ledger import Ledger, Reservation
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.budget")
Item = tuple[Reservation, tuple[int, ...]]


class Settler:
    def __init__(
        self,
        ledger: Ledger,
        spawner: Spawner,
        quiet: Callable[[], bool] = lambda: False,  # True: an outage is logged elsewhere
        linger_s: float = 0.002,
        max_batch: int = 256,
    ) -> None:
        self._ledger = ledger
        self._spawner = spawner
        self._quiet = quiet
        self._linger_s = linger_s
        self._max_batch = max_batch
        self._pending: list[Item] = []
        self._running = False

    def add(self, reservation: Reservation, actuals: tuple[int, ...]) -> None:
        if not reservation.charges:
            return
        self._pending.append((reservation, actuals))
        if not self._running:
            self._running = True
            self._spawner.spawn(self._run(), "budget-settle")

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        try:
            await asyncio.sleep(self._linger_s)
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._send(batch)
        except asyncio.CancelledError:
            # Shutdown: one last attempt for what is held, bounded in time.
            batch, self._pending = self._pending, []
            if batch:
                try:
                    async with asyncio.timeout(1.0):
                        await self._send(batch)
                except TimeoutError:
                    pass
            raise
        finally:
            self._running = False

    async def _send(self, batch: list[Item]) -> None:
        try:
            await self._ledger.settle_many(batch)
        except (RedisError, OSError) as exc:
            # The reservations expire on their own; this spend is lost from the books.
            if not self._quiet():
                log.warning("budget settle of %d calls failed: %s", len(batch), exc)
