"""The local state of leases: what one replica holds, per pool, and what a call took.

When to use: through ``LeaseBook`` (``gateway/governance/leases.py``); these are its values.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from gateway.governance.ledger import Charge, Fill, Headroom, Window


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True, eq=False)
class Lease:
    pool: Pool
    lid: str
    amount: int  # granted: the entry's amount in the state store
    until: float  # monotonic: no admission after this
    base: int  # the pool's total when granted, without this lease (for headers and alerts)
    reset_at: float = 0.0  # window: when its oldest entry leaves (monotonic)
    expiry_ms: int = 0  # budget: the entry's expiry in the state store
    holds: int = 0  # budget: worst cases of the calls in flight on it
    used: int = 0  # budget: spent by settled calls; window: units admitted
    last_ms: int = 0  # window: the last use
    closed: bool = False  # admits no more
    shrinking: bool = False  # a shrink is in flight: its id and amount are about to change
    returned: bool = False

    def room(self) -> int:
        return self.amount - self.holds - self.used


@dataclass(slots=True, eq=False)
class Pool:
    keys: tuple[str, str]
    budget: bool
    limit: int
    period: int  # budget: TTL of its keys (s); window: its length (ms)
    since: float
    unit: int = 1  # the last call's amount
    leases: list[Lease] = field(default_factory=list)
    granting: asyncio.Future[None] | None = None
    denied_until: float = 0.0
    admitted: int = 0
    rate: float = 0.0  # units per second, for the next grant's size
    waiting: int = 0  # units of the calls waiting for the grant in flight

    def usable(self, amount: int, now: float) -> Lease | None:
        for lease in self.leases:
            if now < lease.until and lease.room() >= amount:
                return lease
        return None


@dataclass(slots=True)
class Taken:
    """What a call took locally, and what it must still get from the exact path."""

    holds: list[tuple[Lease, Charge]] = field(default_factory=list)
    uses: list[tuple[Lease, Window]] = field(default_factory=list)
    exact_charges: tuple[Charge, ...] = ()
    exact_windows: tuple[Window, ...] = ()

    def rooms(self) -> list[Headroom]:
        """Headroom from the last grant's totals plus local use (other replicas' use since the
        grant is not seen: an approximation, documented)."""
        now = time.monotonic()
        return [
            Headroom(w, w.limit - lease.base - lease.used, max(0.0, lease.reset_at - now))
            for lease, w in self.uses
        ]

    def fills(self) -> list[Fill]:
        return [Fill(c, lease.base + lease.holds + lease.used) for lease, c in self.holds]
