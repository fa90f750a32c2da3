"""Leases: a replica carves blocks out of budgets and rate windows and spends them locally.

Why: with one reserve script per call, the state store's per-call Lua work (about 45 commands
for a key with budgets and windows at three scopes) is most of what governance costs. A lease
moves that work off most calls: the common path of a governed call makes no round trip at all.

Policy:
- A budget lease is an entry of the budget's reservation set, counted in ``reserved``, exactly
  like one call's reservation (``lease.lua``): every other replica's admissions see it, and the
  reaper returns it when it expires. Its expiry (``leases.ttl_s``) is renewed while calls are in
  flight on it, so a replica that dies gives it back within ``ttl_s``; the spend of calls it
  settled locally on that lease is then not charged (under-counted, never over-spent).
- A window lease of K units is an entry of cost K scored at grant + ``validity_s``: it counts in
  every 60 s window that could contain one of its uses (conservative). Returned with k used, it
  becomes an entry of cost k scored at the last use.
- A call is admitted locally, all or nothing, into every pool that has room; a pool without room
  waits for one refill (the refills of one event-loop turn share one script call) and, if that
  still gives no room, the call takes the exact per-call path (``reserve.lua``) for that pool.
- A grant is at most 1/16 of what is free and is refused when smaller than two calls' worth:
  near exhaustion the pool is exact (as before leases) for ``validity_s``, and the replica returns
  its own unused remainder at once. Far from it, grants follow local demand (twice the rate
  over ``validity_s``), asked ahead at half use, so steady traffic does not wait.
- A lease admits calls for ``validity_s``; then it is returned (batched, in the background) as
  soon as no call is in flight on it. So capacity may sit unused in another replica's lease for
  at most ``validity_s`` (plus the longest call on it). Session budgets and pools too small to
  share (limit / 16 < two calls) stay exact. At shutdown every lease is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.governance import lease_script as ops
from gateway.governance.lease_policy import Leases
from gateway.governance.lease_state import Lease, Pool, Taken, now_ms
from gateway.governance.ledger import Charge, Window
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.budget")
DIVISOR = 16  # lease.lua grants at most free / DIVISOR
LEAST_CALLS = 2  # a grant smaller than this many calls' worth is refused
FIRST_CALLS = 16  # a pool's first grant asks for this many calls' worth
AHEAD_CALLS = 64  # no refill ahead when less than this many calls' worth was free at the grant
MAX_BATCH = 256
Result = list[int] | BaseException
Operation = ops.Op | Callable[[], ops.Op]  # a grant is sized when its batch is sent


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a grant nobody awaited failed: no "never retrieved" warning


class LeaseBook:
    def __init__(self, redis: aioredis.Redis, spawner: Spawner, policy: Leases) -> None:
        self._script = ops.LeaseScript(redis)
        self._spawner = spawner
        self._validity_s = policy.validity_s
        self._ttl_ms = int(policy.ttl_s * 1000)
        self._tick_s = min(0.25, max(0.02, policy.validity_s / 4))
        self._pools: dict[str, Pool] = {}
        self._draining: set[Lease] = set()  # closed budget leases with calls in flight
        self._pending: list[tuple[Operation, Callable[[Result], None]]] = []
        self._scheduled = False
        self._keeping = False
        self._prefix = f"L{os.getpid():x}{uuid.uuid4().hex[:6]}"
        # Told each time a lease script call succeeds (the budget stage ends an outage on it:
        # traffic served wholly from leases makes no other call to the state store).
        self.on_reachable: Callable[[], None] | None = None
        self._seq = 0

    # --- the request path -------------------------------------------------------------------

    async def take(self, charges: tuple[Charge, ...], windows: tuple[Window, ...]) -> Taken:
        """``take_now``, awaited."""
        got = self.take_now(charges, windows)
        return got if isinstance(got, Taken) else await got

    def take_now(
        self, charges: tuple[Charge, ...], windows: tuple[Window, ...]
    ) -> Taken | Awaitable[Taken]:
        """Admit locally into every pool with room. ``Taken.exact_*`` are the pools this call
        must get through ``reserve.lua``. When every pool had room (the common case) the Taken
        comes back at once, with no coroutine; otherwise an awaitable that waits for the
        refills first (and raises RedisError if they cannot be had)."""
        now, wall = time.monotonic(), now_ms()
        taken = Taken()
        exact_c: list[Charge] = []
        exact_w: list[Window] = []
        wait_c: list[tuple[Pool, Charge]] = []
        wait_w: list[tuple[Pool, Window]] = []
        for c in charges:
            pool = self._budget_pool(c, now)
            if pool is None:
                exact_c.append(c)
            elif not self._hold(pool, c, taken, now):
                wait_c.append((pool, c))
        for w in windows:
            pool = self._window_pool(w, now)
            if pool is None:
                exact_w.append(w)
            elif not self._use(pool, w, taken, now, wall):
                wait_w.append((pool, w))
        if wait_c or wait_w:
            return self._refilled(taken, exact_c, exact_w, wait_c, wait_w)
        taken.exact_charges, taken.exact_windows = tuple(exact_c), tuple(exact_w)
        return taken

    async def _refilled(
        self,
        taken: Taken,
        exact_c: list[Charge],
        exact_w: list[Window],
        wait_c: list[tuple[Pool, Charge]],
        wait_w: list[tuple[Pool, Window]],
    ) -> Taken:
        """``take`` for the pools that had no room: one refill each, then the exact path."""
        for p, c in wait_c:
            p.waiting += c.amount
        for p, w in wait_w:
            p.waiting += w.cost
        grants = {self._grant(p) for p, _ in wait_c} | {self._grant(p) for p, _ in wait_w}
        try:
            for grant in grants:
                await asyncio.shield(grant)
        except BaseException:
            self.release(taken)
            raise
        now, wall = time.monotonic(), now_ms()
        exact_c += [c for p, c in wait_c if not self._hold(p, c, taken, now)]
        exact_w += [w for p, w in wait_w if not self._use(p, w, taken, now, wall)]
        taken.exact_charges, taken.exact_windows = tuple(exact_c), tuple(exact_w)
        return taken

    def settle(self, taken: Taken, actual: Callable[[Charge], int]) -> None:
        """The call ended: its budget holds become its actual spend (local arithmetic)."""
        for lease, c in taken.holds:
            lease.holds -= c.amount
            lease.used += actual(c)
            if lease.closed and lease.holds <= 0:
                self._return_budget(lease)

    def release(self, taken: Taken) -> None:
        """The call was not made (refused by the exact part, cancelled): undo its local takes.
        A window use whose lease is already closed stays counted (conservative)."""
        for lease, c in taken.holds:
            lease.holds -= c.amount
            if lease.closed and lease.holds <= 0:
                self._return_budget(lease)
        for lease, w in taken.uses:
            if not lease.closed:
                lease.used -= w.cost
        taken.holds, taken.uses = [], []

    def refused(self, key: str) -> None:
        """The exact path refused a call on this pool (``hash_key`` or window ``zset_key``): it
        is at its limit, so give back this replica's unused part now and stay exact a while."""
        pool = self._pools.get(key)
        if pool is not None:
            pool.denied_until = time.monotonic() + self._validity_s
            for lease in list(pool.leases):
                self._close(lease)

    def _budget_pool(self, c: Charge, now: float) -> Pool | None:
        if c.limit // DIVISOR < LEAST_CALLS * max(1, c.amount) or c.name.startswith("session:"):
            return None  # too small to share, or per session: exact
        pool = self._pools.get(c.hash_key)
        if pool is None:
            pool = Pool((c.hash_key, c.zset_key), True, c.limit, c.ttl_s, now)
            self._pools[c.hash_key] = pool
        if pool.denied_until > now:
            return None
        pool.unit = max(1, c.amount)
        return pool

    def _window_pool(self, w: Window, now: float) -> Pool | None:
        if w.limit // DIVISOR < LEAST_CALLS * max(1, w.cost):
            return None
        pool = self._pools.get(w.zset_key)
        if pool is None:
            pool = Pool((w.zset_key, w.sum_key), False, w.limit, w.window_ms, now)
            self._pools[w.zset_key] = pool
        if pool.denied_until > now:
            return None
        pool.unit = max(1, w.cost)
        return pool

    def _hold(self, pool: Pool, c: Charge, taken: Taken, now: float) -> bool:
        lease = pool.usable(c.amount, now)
        if lease is None:
            self._expire(pool, now)
            return False
        lease.holds += c.amount
        pool.admitted += c.amount
        taken.holds.append((lease, c))
        self._ahead(pool, lease, now)
        if lease.room() < c.amount:
            self._close(lease, shrink=False)  # full: returned when its calls are done
        return True

    def _use(self, pool: Pool, w: Window, taken: Taken, now: float, wall: int) -> bool:
        lease = pool.usable(w.cost, now)
        if lease is None:
            self._expire(pool, now)
            return False
        lease.used += w.cost
        lease.last_ms = wall
        pool.admitted += w.cost
        taken.uses.append((lease, w))
        self._ahead(pool, lease, now)
        if lease.room() < w.cost:
            self._close(lease)  # full: returned now, as an entry of its uses
        return True

    def _expire(self, pool: Pool, now: float) -> None:
        """Return leases past their validity now, not at the next tick: their room would sit
        reserved meanwhile. (Sent before this call's refill or exact admission.)"""
        for lease in [lease for lease in pool.leases if now >= lease.until]:
            self._close(lease)

    def _ahead(self, pool: Pool, lease: Lease, now: float) -> None:
        """Ask for the next lease at half use (or half validity), so traffic does not wait."""
        if pool.granting is not None or lease is not pool.leases[-1]:
            return
        if pool.limit - lease.base - lease.amount < AHEAD_CALLS * pool.unit:
            return  # near exhaustion a lease asked ahead would sit unused: ask on demand
        if lease.room() * 2 < lease.amount or now > lease.until - self._validity_s / 2:
            self._grant(pool)

    # --- grants, returns, renewals ----------------------------------------------------------

    def _grant(self, pool: Pool) -> asyncio.Future[None]:
        if pool.granting is not None:
            return pool.granting
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        pool.granting = future
        self._seq += 1
        lid = f"{self._prefix}-{self._seq:x}"
        until, expiry = 0.0, 0

        def build() -> ops.Op:
            """Sized when sent (end of the loop turn): the calls waiting by then count."""
            nonlocal until, expiry
            now, wall = time.monotonic(), now_ms()
            elapsed = now - pool.since
            if elapsed > 0.05:
                rate = pool.admitted / elapsed
                pool.rate = rate if pool.rate == 0 else (pool.rate + rate) / 2
                pool.admitted, pool.since = 0, now
            least = LEAST_CALLS * pool.unit
            want = max(least, math.ceil(pool.rate * self._validity_s * 2)) + pool.waiting
            if pool.rate == 0:
                want = max(want, FIRST_CALLS * pool.unit)
            pool.waiting = 0
            until = now + self._validity_s
            if pool.budget:
                expiry = wall + self._ttl_ms
                return ops.grant_budget(
                    pool.keys, lid, pool.limit, want, least, expiry, pool.period, pool.unit
                )
            expiry = wall + int(self._validity_s * 1000)
            return ops.grant_window(
                pool.keys, lid, pool.limit, want, least, pool.period, expiry, pool.unit
            )

        def granted(result: Result) -> None:
            pool.granting = None
            if isinstance(result, BaseException):
                future.set_exception(result)
                return
            grant, total = result[0], result[1]
            if grant > 0:
                lease = Lease(pool, lid, grant, until, total - grant, expiry_ms=expiry)
                if not pool.budget:
                    lease.reset_at = time.monotonic() + result[2] / 1000
                pool.leases.append(lease)
                self._keep()
            else:  # near exhaustion: exact for a while, and give back what this replica holds
                pool.denied_until = time.monotonic() + self._validity_s
                for lease in list(pool.leases):
                    self._close(lease)
            future.set_result(None)

        self._send(build, granted)
        return future

    def _close(self, lease: Lease, shrink: bool = True) -> None:
        if lease.closed:
            return
        lease.closed = True
        pool = lease.pool
        pool.leases.remove(lease)
        if not pool.budget:
            op = ops.return_window(
                pool.keys, lease.lid, lease.amount, lease.used, lease.last_ms, pool.period
            )
            self._send(op, self._returned)
        elif lease.holds <= 0:
            self._return_budget(lease)
        else:
            self._draining.add(lease)
            if shrink:
                self._shrink(lease)

    def _shrink(self, lease: Lease) -> None:
        """Closed with calls in flight: give back the unused part now, keep what they hold."""
        pool, spent, keep = lease.pool, max(0, lease.used), lease.holds
        self._seq += 1
        lid, expiry = f"{self._prefix}-{self._seq:x}", now_ms() + self._ttl_ms
        op = ops.shrink_budget(
            pool.keys, lease.lid, lease.amount, spent, lid, keep, expiry, pool.period
        )
        lease.shrinking = True

        def shrunk(result: Result) -> None:
            lease.shrinking = False
            if isinstance(result, BaseException):
                return  # still held as it was: renewed, then returned, as usual
            if result[0] == 1:
                lease.lid, lease.amount, lease.expiry_ms = lid, keep, expiry
                lease.used -= spent
            else:  # reaped meanwhile: its calls' spend goes uncharged
                lease.returned = True
                self._draining.discard(lease)
            if lease.holds <= 0:
                self._return_budget(lease)

        self._send(op, shrunk)

    def _return_budget(self, lease: Lease) -> None:
        if lease.returned or lease.shrinking:
            return  # a shrink in flight returns it when it lands
        lease.returned = True
        self._draining.discard(lease)
        op = ops.return_budget(lease.pool.keys, lease.lid, lease.amount, max(0, lease.used))
        self._send(op, self._returned)

    @staticmethod
    def _returned(result: Result) -> None:
        if isinstance(result, BaseException):
            # Budget leases expire on their own; window entries are conservative until then.
            log.warning("lease return failed: %s", result)

    def _renew(self, lease: Lease, wall: int) -> None:
        lease.expiry_ms = wall + self._ttl_ms
        pool = lease.pool
        op = ops.renew_budget(pool.keys, lease.lid, lease.amount, lease.expiry_ms, pool.period)

        def renewed(result: Result) -> None:
            if not isinstance(result, BaseException) and result[0] == 0:
                lease.returned = True  # reaped meanwhile: its calls' spend goes uncharged
                self._draining.discard(lease)

        self._send(op, renewed)

    def _send(self, op: Operation, done: Callable[[Result], None]) -> None:
        self._pending.append((op, done))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        for start in range(0, len(batch), MAX_BATCH):
            self._spawner.spawn(self._run(batch[start : start + MAX_BATCH]), "budget-lease")

    async def _run(self, batch: list[tuple[Operation, Callable[[Result], None]]]) -> None:
        try:
            built = [op if isinstance(op, ops.Op) else op() for op, _ in batch]
            results = await self._script.run(built, now_ms())
        except (RedisError, OSError) as exc:
            for _, done in batch:
                done(exc)
            return
        except BaseException:
            for _, done in batch:
                done(RedisError("the lease batch was cancelled"))
            raise
        if self.on_reachable is not None:
            self.on_reachable()
        for (_, done), result in zip(batch, results, strict=True):
            done(result)

    # --- the keeper: validity, renewals, shutdown -------------------------------------------

    def _keep(self) -> None:
        if not self._keeping:
            self._keeping = True
            self._spawner.spawn(self._keeper(), "budget-leases")

    async def _keeper(self) -> None:
        try:
            while self._pools or self._draining:
                await asyncio.sleep(self._tick_s)
                self.tick()
        except asyncio.CancelledError:
            with contextlib.suppress(TimeoutError, RedisError, OSError):
                async with asyncio.timeout(1.0):
                    await self.return_all()
            raise
        finally:
            self._keeping = False

    def tick(self) -> None:
        """Close leases past their validity; renew draining ones; forget idle pools."""
        now, wall = time.monotonic(), now_ms()
        for key, pool in list(self._pools.items()):
            for lease in list(pool.leases):
                if now >= lease.until:
                    self._close(lease)
            if not pool.leases and pool.granting is None and pool.denied_until <= now:
                del self._pools[key]
        for lease in list(self._draining):
            if not lease.shrinking and lease.expiry_ms - wall < self._ttl_ms // 2:
                self._renew(lease, wall)

    async def return_all(self) -> None:
        """Shutdown: give every lease back in one script call (calls still in flight on a
        budget lease are then not charged)."""
        batch: list[ops.Op] = []
        for pool in self._pools.values():
            for lease in pool.leases:
                lease.closed = True
                if pool.budget:
                    self._draining.add(lease)
                else:
                    batch.append(
                        ops.return_window(
                            pool.keys,
                            lease.lid,
                            lease.amount,
                            lease.used,
                            lease.last_ms,
                            pool.period,
                        )
                    )
            pool.leases.clear()
        for lease in self._draining:
            lease.returned = True
            batch.append(
                ops.return_budget(lease.pool.keys, lease.lid, lease.amount, max(0, lease.used))
            )
        self._draining.clear()
        self._pools.clear()
        if batch:
            await self._script.run(batch, now_ms())
