"""Hedged requests (opt-in per alias): race a second target when the first is slow to start.

Policy: start the first target; if it has not produced its first chunk by its own observed p95
time to first chunk (clamped to the alias's ``min_delay_s``..``max_delay_s``; ``max_delay_s``
until there are observations), start the next target too. The first to produce a first chunk
wins; the other is cancelled, which closes its upstream connection, so only the winner's answer
is used and charged. The hedge is an upstream call like any other: it counts against
``max_attempts`` and the retry budget, so hedging cannot amplify an outage. Only the p95 tail
is hedged, so it adds about 5% upstream calls in steady state.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.calls import Call, Note
from gateway.errors import GatewayError
from gateway.rules import Hedge
from gateway.stages.attempts import Attempter, Success, Tally, close_chunks


def hedge_delay_s(p95_ttft_s: float | None, hedge: Hedge) -> float:
    if p95_ttft_s is None:
        return hedge.max_delay_s
    return min(hedge.max_delay_s, max(hedge.min_delay_s, p95_ttft_s))


async def _discard(task: asyncio.Task[Success]) -> None:
    """Cancel a losing attempt; if it had already won a race we lost track of, close it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, GatewayError):
        loser = await task
        await close_chunks(loser.reply.chunks)


async def hedged_attempt(
    chain: Attempter, target: str, rest: list[str], call: Call, tally: Tally, hedge: Hedge
) -> Success:
    if not rest:
        return await chain.attempt(target, call, tally)
    delay = hedge_delay_s(chain.observations.p95_ttft_s(target), hedge)
    primary = asyncio.ensure_future(chain.attempt(target, call, tally))
    try:
        done, _ = await asyncio.wait({primary}, timeout=delay)
        if done or not chain.may_call_upstream(call, tally):
            return await primary
        backup_target = rest[0]
        tally.hedged.add(backup_target)
        tally.notes.append(Note("hedged", f"{target}->{backup_target}"))
        backup = asyncio.ensure_future(chain.attempt(backup_target, call, tally))
    except BaseException:
        await _discard(primary)
        raise
    pending: set[asyncio.Task[Success]] = {primary, backup}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is None:
                    winner = task.result()
                    tally.notes.append(Note("hedge_winner", winner.target))
                    return winner
        # Both failed: the primary's error goes on to the fallback loop.
        raise primary.exception() or backup.exception() or RuntimeError("hedge lost both")
    finally:
        for task in pending:
            await _discard(task)
