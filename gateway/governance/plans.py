"""What a call draws on: its rate windows and budgets, worked out once per key and kept.

When to use: the budget stage asks ``Planner.plan`` for every governed call. Policy: which
limits apply (the key's quota, its team's, a feature's, the global quota, a session's caps)
depends only on the key, the feature and session headers and the rules, so the names, limits and
periods are worked out once per (key, feature, session) and kept (``Shape``); a call then only
fills in its amounts (its tokens and USD). Rate windows whose cost is always 1 (RPM) are built
once and reused. The periods' ends change at UTC midnight only, so they are computed once a day.
Kept per (key id, team, feature, session): the keystore hands out a new ``Principal`` each
second for a managed key (and at a reload), so a kept shape is reused for another principal
object only when its quota is equal; a key whose quota changed (admin API) is planned anew.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.calls import Call, Principal
from gateway.governance.ledger import USD_SCALE, Charge, Reservation, Window, period_ends
from gateway.rules import Budgets, Governance, Quota

FEATURE_HEADER = "x-tiergate-feature"
SESSION_HEADER = "x-tiergate-session"
MAX_SHAPES = 10_000  # kept shapes (keys x features x sessions); cleared when passed


def is_empty(q: Quota) -> bool:
    b = q.budgets
    return (
        q.rpm is None
        and q.tpm is None
        and b.calls_per_day is None
        and b.tokens_per_day is None
        and b.tokens_per_month is None
        and b.usd_per_day is None
        and b.usd_per_month is None
    )


@dataclass(frozen=True, slots=True)
class Slot:
    """One budget of a shape: its name, scaled limit, unit ("calls" | "tokens" | "usd") and
    period ("day" | "month")."""

    name: str
    limit: int
    unit: str
    period: str


@dataclass(frozen=True, slots=True)
class Shape:
    """Every limit one (key, feature, session) draws on, without amounts."""

    windows: tuple[Window, ...]  # in order; RPM windows (cost 1) are reused as they are
    tpm_at: tuple[int, ...]  # the TPM windows' places: their cost is each call's tokens
    slots: tuple[Slot, ...]


def slots_of(scope: str, b: Budgets) -> list[Slot]:
    """The budgets one scope declares, in the ledger's order (USD scaled to micro-dollars)."""
    out: list[Slot] = []
    for unit, period, limit in (
        ("calls", "day", b.calls_per_day),
        ("tokens", "day", b.tokens_per_day),
        ("tokens", "month", b.tokens_per_month),
        ("usd", "day", b.usd_per_day),
        ("usd", "month", b.usd_per_month),
    ):
        if limit is not None:
            scaled = int(limit * USD_SCALE) if unit == "usd" else int(limit)
            out.append(Slot(f"{scope}:{unit}:{period}", scaled, unit, period))
    return out


def shape_of(scoped: list[tuple[str, Quota]]) -> Shape:
    windows: list[Window] = []
    tpm_at: list[int] = []
    slots: list[Slot] = []
    for scope, q in scoped:
        if q.rpm is not None:
            windows.append(Window(f"{scope}:rpm", q.rpm, 1))
        if q.tpm is not None:
            tpm_at.append(len(windows))
            windows.append(Window(f"{scope}:tpm", q.tpm, 0))
        slots += slots_of(scope, q.budgets)
    return Shape(tuple(windows), tuple(tpm_at), tuple(slots))


class Planner:
    def __init__(self, governance: Governance) -> None:
        gov = governance
        self._gov = gov
        # No team, feature, session or global limits configured: only keys can have quotas.
        self._nothing_but_keys = (
            not gov.teams
            and not gov.features
            and gov.session.max_calls is None
            and gov.session.max_usd is None
            and is_empty(gov.global_quota)
        )
        self._sessions = gov.session.max_calls is not None or gov.session.max_usd is not None
        self._shapes: dict[
            tuple[str, str, str | None, str | None], tuple[Principal, Shape | None]
        ] = {}
        self._day = -1
        self._ends: dict[str, datetime] = {}
        self._pid = f"{os.getpid():x}"
        self._seq = 0

    def shape(self, call: Call) -> Shape | None:
        """What this call draws on; None when nothing applies (the common case without
        governance, decided without building anything)."""
        principal = call.principal
        if self._nothing_but_keys and is_empty(principal.quota):
            return None
        headers = call.headers
        # Only what changes the plan goes into the key: a feature the rules name, a session
        # when session caps are set (cut as the scope cuts it). Other values would only split
        # the cache, and a client could fill it with long ones.
        feature = headers.get(FEATURE_HEADER)
        if feature is not None and feature not in self._gov.features:
            feature = None
        session = headers.get(SESSION_HEADER) if self._sessions else None
        if session is not None:
            session = session[:128]
        key = (principal.key_id, principal.team, feature, session)
        kept = self._shapes.get(key)
        if kept is not None:
            if kept[0] is principal:
                return kept[1]
            if kept[0].quota == principal.quota:  # the same key, fetched again
                self._shapes[key] = (principal, kept[1])
                return kept[1]
        shape = self._build(principal, feature, session)
        if len(self._shapes) >= MAX_SHAPES:
            self._shapes.clear()
        self._shapes[key] = (principal, shape)
        return shape

    def _build(
        self, principal: Principal, feature: str | None, session: str | None
    ) -> Shape | None:
        gov = self._gov
        out: list[tuple[str, Quota]] = [(f"key:{principal.key_id}", principal.quota)]
        team = gov.teams.get(principal.team)
        if team is not None:
            out.append((f"team:{principal.team}", team))
        if feature is not None and feature in gov.features:
            out.append((f"feature:{feature}", gov.features[feature]))
        out.append(("global", gov.global_quota))
        scoped = [(scope, q) for scope, q in out if not is_empty(q)]
        caps = gov.session
        if session and (caps.max_calls is not None or caps.max_usd is not None):
            budgets = Budgets(calls_per_day=caps.max_calls, usd_per_day=caps.max_usd)
            scope = f"session:{principal.key_id}:{session[:128]}"
            scoped.append((scope, Quota(budgets=budgets)))
        return shape_of(scoped) if scoped else None

    def plan(
        self, shape: Shape, tokens: int, usd: int, budgets: bool = True
    ) -> tuple[Reservation, tuple[Window, ...]]:
        """This call's reservation (its budgets, unless ``budgets`` is False: a downgraded
        call keeps only the rate limits) and its rate windows."""
        self._seq += 1
        rid = f"{self._pid}-{time.monotonic_ns():x}-{self._seq:x}"
        windows = shape.windows
        if shape.tpm_at:
            filled = list(windows)
            for i in shape.tpm_at:
                filled[i] = Window(filled[i].name, filled[i].limit, tokens)
            windows = tuple(filled)
        if not budgets or not shape.slots:
            return Reservation(rid, ()), windows
        ends = self._period_ends()
        charges = tuple(
            Charge(
                s.name,
                s.limit,
                tokens if s.unit == "tokens" else usd if s.unit == "usd" else 1,
                ends[s.period],
            )
            for s in shape.slots
        )
        return Reservation(rid, charges), windows

    def _period_ends(self) -> dict[str, datetime]:
        day = int(time.time() // 86400)  # the UTC day: periods end at UTC midnights
        if day != self._day:
            self._ends = period_ends(datetime.now(UTC))
            self._day = day
        return self._ends
