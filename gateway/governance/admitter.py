"""Admissions coalesced: the reserves of calls that arrive together share one script call.

When to use: the budget stage asks ``Admitter.reserve`` instead of the ledger directly. Policy:
a reserve joins the batch of the current event-loop turn; at the end of that turn the batch goes
to Redis as one ``reserve.lua`` call (at most ``max_batch`` requests each), which admits each
request in order, atomically, all or nothing per request, exactly as one call per request would.
No call waits for a timer: a lone call is sent at the end of its own turn, so latency is one
round trip as before, and under load many calls share it (fewer round trips, fewer system
calls, less per-command work in Redis and in the client).

A call whose client goes away while its reserve is in flight may still be admitted; the budget
stage then releases it at once (settle with nothing spent), so no reservation leaks.
"""

from __future__ import annotations

import asyncio
import time

from redis.exceptions import RedisError

from gateway.governance.ledger import Fill, Headroom, Ledger, Refusal, Reservation, Window
from gateway.tasks import Spawner

Verdict = Refusal | tuple[list[Headroom], list[Fill]]
Pending = tuple[Reservation, tuple[Window, ...], int, "asyncio.Future[Verdict]"]


class Admitter:
    def __init__(self, ledger: Ledger, spawner: Spawner, max_batch: int = 128) -> None:
        self._ledger = ledger
        self._spawner = spawner
        self._max_batch = max_batch
        self._pending: list[Pending] = []
        self._scheduled = False

    async def reserve(
        self, reservation: Reservation, windows: tuple[Window, ...], expiry_ms: int
    ) -> Verdict:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Verdict] = loop.create_future()
        self._pending.append((reservation, windows, expiry_ms, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), self._max_batch):
            chunk = batch[start : start + self._max_batch]
            self._spawner.spawn(self._send(chunk), "budget-reserve")

    async def _send(self, batch: list[Pending]) -> None:
        items = [(r, w, e) for r, w, e, _ in batch]
        try:
            verdicts = await self._ledger.reserve_many(items, int(time.time() * 1000))
        except (RedisError, OSError) as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(RedisError("the admission batch was cancelled"))
            raise
        for (*_, future), verdict in zip(batch, verdicts, strict=True):
            if not future.done():
                future.set_result(verdict)
