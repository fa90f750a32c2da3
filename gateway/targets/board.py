"""BreakerBoard: share ejections across replicas through Redis (``resilience.share_breakers``).

Policy: a replica that ejects a target (its breaker opened, credentials were refused, the admin
ejected it) publishes it; the others apply it on their next ``sync``, so one replica's lesson
spares the others their own failed attempts. Each target has one hash::

    tiergate:breaker:<target>  open_until   wall-clock epoch seconds (0: none)
                               opened_at    wall-clock epoch seconds
                               reason       why it opened
                               restored_at  wall-clock epoch seconds of a manual restore (0: none)

The key expires (PEXPIREAT) ``EXPIRY_MARGIN_S`` after ``open_until``, so the ejections of a
replica that died vanish on their own. A manual restore is published too (``open_until`` 0,
``restored_at`` now) so an admin's restore on one replica closes the target on all of them;
it expires after the same margin.

Only ejections travel: the half-open probing and the closing after a probe success stay local
(each replica probes for itself after the shared open period). The newest event wins: a restore
later than a peer's open keeps the breaker closed, an open later than a restore opens it.

``sync`` does one pipelined round trip to read every target and, when a local event is new, one
to write it. It runs from a background task (every ~250 ms), never per request. Times cross
replicas as wall-clock epoch seconds and become monotonic locally (``monotonic + offset``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from gateway.targets.breaker import OPEN, Breaker, BreakerSnapshot, BreakerState

KEY_PREFIX = "tiergate:breaker:"  # + target name: one hash per target
FIELD_OPEN_UNTIL = "open_until"
FIELD_OPENED_AT = "opened_at"
FIELD_REASON = "reason"
FIELD_RESTORED_AT = "restored_at"
EXPIRY_MARGIN_S = 60.0  # a published entry outlives its open period by this much
TOLERANCE_S = 0.05  # clock conversions are not exact: smaller differences are the same time

log = logging.getLogger("tiergate.board")

Fields = dict[FieldT, EncodableT]


@dataclass(frozen=True, slots=True)
class Entry:
    """One target's published state (wall-clock epoch seconds)."""

    open_until: float = 0.0
    opened_at: float = 0.0
    reason: str = ""
    restored_at: float = 0.0


@dataclass(frozen=True, slots=True)
class BoardChange:
    """A local breaker the board changed (report it like any other transition)."""

    target: str
    old_state: BreakerState
    new_state: BreakerState
    reason: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_entry(raw: Mapping[Any, Any]) -> Entry | None:
    """A hash as HGETALL returns it (bytes or str), or None when there is none or it is bad."""
    if not raw:
        return None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    try:
        return Entry(
            open_until=float(fields.get(FIELD_OPEN_UNTIL, "0")),
            opened_at=float(fields.get(FIELD_OPENED_AT, "0")),
            reason=fields.get(FIELD_REASON, ""),
            restored_at=float(fields.get(FIELD_RESTORED_AT, "0")),
        )
    except ValueError:
        return None


class BreakerBoard:
    """Built once per process when ``share_breakers`` is on; ``sync`` from one background task."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str = KEY_PREFIX,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        timeout_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._timeout_s = timeout_s
        self._prefix = key_prefix
        self._clock = clock
        self._wall = wall
        # Per target, the local event already exchanged with the board (so nothing echoes):
        self._synced_until: dict[str, float] = {}  # local open_until (monotonic)
        self._synced_restore: dict[str, float] = {}  # local restored_at (monotonic)
        self._seen_open: dict[str, tuple[float, float]] = {}  # remote (open_until, opened_at)
        self._seen_restore: dict[str, float] = {}  # remote restored_at already handled
        self._healthy = True

    def key(self, target: str) -> str:
        return self._prefix + target

    async def sync(self, breakers: Mapping[str, Breaker]) -> list[BoardChange]:
        """Exchange ejections with the board. Returns what changed locally. A Redis failure or
        a sync slower than ``timeout_s`` is logged (once per outage) and skipped: breakers then
        simply stay local."""
        try:
            async with asyncio.timeout(self._timeout_s):
                changes = await self._exchange(breakers)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._healthy:
                log.warning("breaker board unreachable, breakers stay local: %r", exc)
                self._healthy = False
            return []
        if not self._healthy:
            log.info("breaker board reachable again")
            self._healthy = True
        return changes

    async def _exchange(self, breakers: Mapping[str, Breaker]) -> list[BoardChange]:
        names = list(breakers)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.key(name))
            raws: list[Any] = await pipe.execute()
        mono = self._clock()
        offset = self._wall() - mono
        synced = (dict(self._synced_until), dict(self._synced_restore))
        changes: list[BoardChange] = []
        writes: list[tuple[str, Fields, float]] = []
        for name, raw in zip(names, raws, strict=True):
            entry = parse_entry(raw) if isinstance(raw, dict) else None
            change = self._apply(name, breakers[name], entry, mono, offset)
            if change is not None:
                changes.append(change)
            write = self._outgoing(name, breakers[name], entry, mono, offset)
            if write is not None:
                writes.append((self.key(name), *write))
        if writes:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, mapping, expire_at in writes:
                        pipe.hset(key, mapping=mapping)
                        pipe.pexpireat(key, int(expire_at * 1000))
                    await pipe.execute()
            except BaseException:
                # Not published: try again next time (re-sending an applied event is harmless).
                self._synced_until, self._synced_restore = synced
                raise
        return changes

    def _apply(
        self, name: str, breaker: Breaker, entry: Entry | None, mono: float, offset: float
    ) -> BoardChange | None:
        """Apply a peer's event that this replica has not seen yet."""
        if entry is None:
            return None
        snap = breaker.snapshot(mono)
        before = breaker.state
        if entry.restored_at and entry.restored_at != self._seen_restore.get(name):
            self._seen_restore[name] = entry.restored_at
            opened_wall = None if snap.opened_at is None else snap.opened_at + offset
            if opened_wall is not None and opened_wall < entry.restored_at:
                # Restored at the peer's time, so a later open elsewhere still wins over it.
                restored = entry.restored_at - offset
                breaker.restore(restored)
                self._synced_restore[name] = restored  # not news to the board
        elif entry.open_until > mono + offset + TOLERANCE_S and (
            (entry.open_until, entry.opened_at) != self._seen_open.get(name)
        ):
            self._seen_open[name] = (entry.open_until, entry.opened_at)
            restored_wall = None if snap.restored_at is None else snap.restored_at + offset
            local_until = _local_until_wall(snap, offset)
            newer_than_restore = restored_wall is None or entry.opened_at > restored_wall
            if newer_than_restore and entry.open_until > local_until + TOLERANCE_S:
                breaker.eject(mono, entry.open_until - offset, entry.reason or "shared")
                self._synced_until[name] = breaker.snapshot(mono).open_until or 0.0
        after = breaker.state
        if after is before:
            return None
        return BoardChange(name, before, after, breaker.last_change)

    def _outgoing(
        self, name: str, breaker: Breaker, entry: Entry | None, mono: float, offset: float
    ) -> tuple[Fields, float] | None:
        """The local event to publish, if there is a new one: (fields, expire at, wall)."""
        snap = breaker.snapshot(mono)
        now_wall = mono + offset
        remote = entry or Entry()
        if snap.restored_at is not None and snap.restored_at != self._synced_restore.get(name):
            self._synced_restore[name] = snap.restored_at
            restored_wall = snap.restored_at + offset
            if (
                restored_wall > remote.opened_at
                and restored_wall > remote.restored_at + TOLERANCE_S
            ):
                self._seen_restore[name] = restored_wall  # our own event: not to apply back
                restored: Fields = {
                    FIELD_OPEN_UNTIL: "0",
                    FIELD_OPENED_AT: "0",
                    FIELD_REASON: "restored",
                    FIELD_RESTORED_AT: repr(restored_wall),
                }
                return restored, now_wall + EXPIRY_MARGIN_S
        if (
            snap.state is not OPEN
            or snap.open_until is None
            or snap.opened_at is None
            or snap.open_until == self._synced_until.get(name)
        ):
            return None
        self._synced_until[name] = snap.open_until
        until_wall = snap.open_until + offset
        if until_wall <= remote.open_until + TOLERANCE_S:
            return None  # the board already holds this open period or a longer one
        opened_wall = snap.opened_at + offset
        opened: Fields = {
            FIELD_OPEN_UNTIL: repr(until_wall),
            FIELD_OPENED_AT: repr(opened_wall),
            FIELD_REASON: snap.reason or "",
            FIELD_RESTORED_AT: "0",
        }
        self._seen_open[name] = (until_wall, opened_wall)  # our own event: not to apply back
        return opened, until_wall + EXPIRY_MARGIN_S


def _local_until_wall(snap: BreakerSnapshot, offset: float) -> float:
    if snap.state is not OPEN or snap.open_until is None:
        return 0.0
    return snap.open_until + offset
