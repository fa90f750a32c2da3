"""Budget: per key and per team rate limits and budgets, reserved before the call, settled after.

Policy:
- What applies: the key's quota, its team's (rules ``governance.teams``) and the global one:
  RPM and TPM as exact sliding windows; tokens and USD per UTC day and month as budgets.
- Before the call, the worst case is reserved in every budget at once (prompt estimate + output
  cap, the cap being the client's ``max_tokens`` or ``governance.default_output_cap_tokens``,
  which is then also sent upstream so the provider cannot exceed what was reserved; USD at the
  most expensive target of the route). After the call, the actual usage is charged and the rest
  released, also when the client went away or the call failed (then nothing is charged).
- A refused rate window: 429 ``rate_limit_exceeded`` with Retry-After. An exhausted budget: 429
  ``insufficient_quota`` naming the budget and its reset time, or, for keys with
  ``on_exhausted: downgrade``, the call continues on ``governance.downgrade_alias`` (rate limits
  still apply; the spend is still recorded against the budgets).
- Redis unreachable: fail closed with 503 and Retry-After (never a 401, never unmetered spend).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

from redis.exceptions import RedisError

from gateway.calls import Call, Note, Reply
from gateway.errors import (
    GatewayError,
    QuotaExhausted,
    RateLimited,
    ReservationReached,
    StateUnavailable,
)
from gateway.governance.admitter import Admitter
from gateway.governance.lease_state import Taken
from gateway.governance.leases import LeaseBook
from gateway.governance.ledger import (
    USD_SCALE,
    Charge,
    Fill,
    Headroom,
    Ledger,
    Refusal,
    Reservation,
    Window,
)
from gateway.governance.local_limits import LocalLimits
from gateway.governance.plans import Planner
from gateway.governance.settler import Settler
from gateway.governance.tokens import Counter, estimate
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.rules import Governance, Price
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.budget")
ALERT_FILL = 0.8
# A stream may carry this many chunks beyond its reserved output tokens (role, finish and usage
# chunks) before the gateway cuts it.
STREAM_SLACK_CHUNKS = 8
# The verdict of a call admitted by local limits while Redis is unreachable (fail-open mode).
FAILED_OPEN: tuple[list[Headroom], list[Fill]] = ([], [])
Verdict = Refusal | tuple[list[Headroom], list[Fill]]
FREE = Price()  # an alias or target without a price (one object, not one per call)


def rate_limit_notes(headroom: list[Headroom]) -> list[Note]:
    """OpenAI-style x-ratelimit-* headers: the tightest window of each kind."""
    notes: list[Note] = []
    for kind, suffix in (("rpm", "requests"), ("tpm", "tokens")):
        rooms = [h for h in headroom if h.window.name.endswith(":" + kind)]
        if not rooms:
            continue
        tight = min(rooms, key=lambda h: h.remaining)
        notes += [
            Note(f"x-ratelimit-limit-{suffix}", str(tight.window.limit)),
            Note(f"x-ratelimit-remaining-{suffix}", str(max(0, tight.remaining))),
            Note(f"x-ratelimit-reset-{suffix}", f"{max(0.0, tight.reset_s):.3f}s"),
        ]
    return notes


def refused_key(refusal: Refusal, exact: Reservation, windows: tuple[Window, ...]) -> str:
    """The state-store key of the pool a refusal names (its lease pool, if it has one)."""
    if refusal.kind == "rate":
        return next((w.zset_key for w in windows if w.name == refusal.name), "")
    return next((c.hash_key for c in exact.charges if c.name == refusal.name), "")


class Budget:
    name = "budget"

    def __init__(
        self,
        ledger: Ledger,
        governance: Governance,
        worst_price: Mapping[str, Price],  # alias -> max input and output prices of its targets
        target_price: Mapping[str, Price],  # target -> its price, for the actual spend
        spawner: Spawner,
        alert: Callable[[str, dict[str, object]], None] | None = None,
        prompt_counters: Mapping[str, Counter] | None = None,  # alias -> its tokenizer
        calls_per_request: Mapping[str, int] | None = None,  # alias -> most upstream answers
    ) -> None:
        self._alert = alert
        self._calls = dict(calls_per_request or {})
        self._count = dict(prompt_counters or {})
        self._planner = Planner(governance)
        self._alerted: set[str] = set()  # budgets (per period) already reported past 80%
        self._ledger = ledger
        self._gov = governance
        self._price = dict(worst_price)
        self._target_price = dict(target_price)
        self._spawner = spawner
        self._local = LocalLimits(governance.local_share)
        self._outage_since: float | None = None  # fail-open mode: when Redis went away
        self._settler = Settler(ledger, spawner, quiet=lambda: self._outage_since is not None)
        self._admitter = Admitter(ledger, spawner)
        leases = governance.leases
        self._book = LeaseBook(ledger.redis, spawner, leases) if leases.enabled else None
        if self._book is not None:
            self._book.on_reachable = self._reachable

    async def __call__(self, call: Call, next_: Next) -> Reply:
        shape = self._planner.shape(call)
        if shape is None:
            return await next_(call)
        request = call.request
        cap = self._gov.default_output_cap_tokens
        n = 1
        if isinstance(request, ChatRequest):
            n = request.n or 1
            if request.output_cap is None:
                # The reserved cap is also the upstream's cap: it cannot spend more than reserved.
                request = request.model_copy(update={"max_tokens": cap})
                call = call.with_request(request)
            else:
                cap = request.output_cap
        else:
            cap = 0
        prompt = self._count.get(call.alias, estimate)(call)
        # An alias that escalates may call a cheaper tier (with its samples) and then the next:
        # the worst case is every one of those calls at the alias's worst price.
        calls = self._calls.get(call.alias, 1)
        tokens = (prompt + cap * n) * calls
        price = self._price.get(call.alias, FREE)
        usd = math.ceil(
            (prompt * price.input_usd_per_mtok + cap * n * price.output_usd_per_mtok)
            * calls
            * USD_SCALE
            / 1_000_000
        )
        reservation, windows = self._planner.plan(shape, tokens, usd)
        verdict, reservation, taken = await self._admit(reservation, windows)
        if isinstance(verdict, Refusal):
            call = self._on_refusal(call, verdict)
            reservation, windows = self._planner.plan(shape, tokens, usd, budgets=False)
            verdict, reservation, taken = await self._admit(reservation, windows)
            if isinstance(verdict, Refusal):
                raise self._error(verdict)
        try:
            reply = await next_(call)
        except BaseException:
            self._settle(reservation, 0, 0, taken)  # nothing spent: release the reservation
            raise
        rooms, fills = verdict
        self._check_fill(fills)
        notes = (Note("budget-reserved-tokens", str(tokens)), *rate_limit_notes(rooms))
        if verdict is FAILED_OPEN:
            notes = (*notes, Note("degraded", "local-limits"))
        limit = cap * n + STREAM_SLACK_CHUNKS if call.stream and cap else None
        chunks = self._settling(reply, reservation, limit, (tokens, usd), taken)
        return reply.with_chunks(chunks).noted(*notes)

    def _check_fill(self, fills: list[Fill]) -> None:
        """Alert once per budget and period when a daily budget passes 80%."""
        if self._alert is None:
            return
        for fill in fills:
            key = fill.charge.hash_key
            if ":day" in fill.charge.name and fill.ratio >= ALERT_FILL and key not in self._alerted:
                if len(self._alerted) > 10_000:
                    self._alerted.clear()
                self._alerted.add(key)
                self._alert(
                    "budget_80pct",
                    {
                        "budget": fill.charge.name,
                        "used_or_reserved": fill.total,
                        "limit": fill.charge.limit,
                    },
                )

    async def _admit(
        self, r: Reservation, windows: tuple[Window, ...]
    ) -> tuple[Verdict, Reservation, Taken | None]:
        """Leased pools locally (``gateway/governance/leases.py``), the rest exactly."""
        if self._book is None:
            return await self._reserve(r, windows), r, None
        try:
            got = self._book.take_now(r.charges, windows)
            taken = got if isinstance(got, Taken) else await got
        except (RedisError, OSError) as exc:
            return self._unreachable(windows, exc), r, None
        if not taken.exact_charges and not taken.exact_windows:  # all local: no round trip
            return (taken.rooms(), taken.fills()), Reservation(r.id, ()), taken
        exact = Reservation(r.id, taken.exact_charges) if taken.holds else r
        try:
            verdict = await self._reserve(exact, taken.exact_windows)
        except BaseException:
            self._book.release(taken)
            raise
        if isinstance(verdict, Refusal):
            self._book.release(taken)
            self._book.refused(refused_key(verdict, exact, taken.exact_windows))
            return verdict, exact, None
        if verdict is not FAILED_OPEN and (taken.holds or taken.uses):
            verdict = (verdict[0] + taken.rooms(), verdict[1] + taken.fills())
        return verdict, exact, taken

    async def _reserve(self, r: Reservation, windows: tuple[Window, ...]) -> Verdict:
        if not r.charges and not windows:
            return [], []
        expiry_ms = int(time.time() * 1000) + int(self._gov.reservation_ttl_s * 1000)
        try:
            verdict = await self._admitter.reserve(r, windows, expiry_ms)
        except asyncio.CancelledError:
            self._settle(r, 0, 0)  # the client went away: release whatever was reserved
            raise
        except (RedisError, OSError) as exc:
            return self._unreachable(windows, exc)
        self._reachable()
        return verdict

    def _reachable(self) -> None:
        """A call to the state store succeeded: end an outage, if one was on."""
        if self._outage_since is not None:
            log.warning("ledger reachable again: shared budgets and limits resume")
            self._outage_since = None
            self._local.reset()

    def _unreachable(self, windows: tuple[Window, ...], exc: Exception) -> Verdict:
        if self._gov.state_outage == "open":
            return self._fail_open(windows, exc)
        log.warning("ledger unreachable: %s: %s", type(exc).__name__, exc)
        raise StateUnavailable(
            "Budgets and limits cannot be checked right now; try again shortly.",
            retry_after_s=1.0,
        ) from exc

    def _fail_open(
        self, windows: tuple[Window, ...], exc: Exception
    ) -> Refusal | tuple[list[Headroom], list[Fill]]:
        """Redis is unreachable and the rules say serve anyway: local limits only."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "ledger unreachable (%s): failing open, local rate limits at %.0f%%, "
                "budgets unchecked until it returns",
                type(exc).__name__,
                self._gov.local_share * 100,
            )
        return self._local.admit(windows) or FAILED_OPEN

    def _on_refusal(self, call: Call, refusal: Refusal) -> Call:
        downgrade = self._gov.downgrade_alias
        if refusal.kind == "budget" and call.principal.on_exhausted == "downgrade" and downgrade:
            return call.with_alias(downgrade)
        raise self._error(refusal)

    @staticmethod
    def _error(refusal: Refusal) -> GatewayError:
        if refusal.kind == "rate":
            return RateLimited(
                f"Rate limit '{refusal.name}' reached ({refusal.current}/{refusal.limit} in the "
                "last minute).",
                retry_after_s=max(0.001, refusal.retry_after_s),
            )
        resets = datetime.now(UTC).timestamp() + refusal.retry_after_s
        when = datetime.fromtimestamp(resets, UTC).isoformat(timespec="seconds")
        return QuotaExhausted(
            f"Budget '{refusal.name}' is exhausted ({refusal.current} of {refusal.limit}); "
            f"it resets at {when}.",
            retry_after_s=refusal.retry_after_s,
        )

    async def _settling(
        self,
        reply: Reply,
        reservation: Reservation,
        limit: int | None,
        reserved: tuple[int, int],
        taken: Taken | None,
    ) -> AsyncIterator[bytes]:
        """Relay; settle once the reply ends. A stream is cut when its chunk count (a token
        each, for OpenAI-style streams) passes what was reserved: an upstream that ignores
        max_tokens cannot spend past the reservation through the gateway."""
        cut = False
        try:
            if limit is None:
                async for chunk in reply.chunks:
                    yield chunk
            else:
                sent = 0
                async for chunk in reply.chunks:
                    sent += 1
                    if sent > limit:
                        cut = True
                        await reply.chunks.aclose()  # type: ignore[attr-defined]
                        raise ReservationReached(
                            f"The answer reached this request's budget reservation "
                            f"({limit - STREAM_SLACK_CHUNKS} output tokens); the stream was cut."
                        )
                    yield chunk
        finally:
            stats = reply.stats
            target = next((n.value for n in reply.notes if n.key == "target"), None)
            price = self._target_price.get(target or "", FREE)
            usd = math.ceil(
                (
                    stats.prompt_tokens * price.input_usd_per_mtok
                    + stats.completion_tokens * price.output_usd_per_mtok
                )
                * USD_SCALE
                / 1_000_000
            )
            usd += math.ceil(stats.earlier_usd * USD_SCALE)
            tokens = stats.prompt_tokens + stats.completion_tokens + stats.earlier_tokens
            if cut:  # the usage chunk never came: charge what was reserved
                tokens, usd = max(tokens, reserved[0]), max(usd, reserved[1])
            self._settle(reservation, tokens, usd, taken)

    def _settle(
        self, reservation: Reservation, tokens: int, usd: int, taken: Taken | None = None
    ) -> None:
        """Leased budgets: local arithmetic. The rest: queue the settle (batched, off the
        request path: ``gateway/governance/settler.py``)."""

        def actual(c: Charge) -> int:
            return tokens if ":tokens:" in c.name else 1 if ":calls:" in c.name else usd

        if taken is not None and self._book is not None:
            self._book.settle(taken, actual)
        if reservation.charges:
            self._settler.add(reservation, tuple(actual(c) for c in reservation.charges))
