"""What one request's walk over its targets keeps: the attempts it made and why they failed.

Shared by the fallback chain and hedging (neither imports the other's internals). The count of
upstream calls that bounds a request lives on the call itself (``Call.allowance``), so that
escalation, fallback and hedging draw from one allowance; a ``Tally`` is one walk's record.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.calls import Call, Note, Reply
from gateway.errors import Attempt, GatewayError
from gateway.stages.observed import Observations


async def close_chunks(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


@dataclass(slots=True)
class Success:
    target: str
    reply: Reply
    first: bytes


class Tally:
    """Per-request bookkeeping: attempts made (with why they failed) and upstream calls."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.upstream_calls = 0
        self.first_charged = False
        self.charged_retries = 0
        self.notes: list[Note] = []
        self.hedged: set[str] = set()  # targets already raced as a hedge

    def failed(self, target: str, exc: GatewayError, started: float) -> None:
        self.attempts.append(
            Attempt(
                target=target,
                error_kind=exc.kind,
                status=exc.status,
                message=exc.message,
                elapsed_ms=(time.perf_counter() - started) * 1000.0,
                retry_after_s=exc.retry_after_s,
                detail=exc.detail,
            )
        )
        self.notes.append(Note("failed", f"{target}:{exc.kind}"))


class Attempter(Protocol):
    """What hedging needs from the chain: one try of one target, and the right to call."""

    @property
    def observations(self) -> Observations: ...

    async def attempt(self, target: str, call: Call, tally: Tally) -> Success: ...

    def may_call_upstream(self, call: Call, tally: Tally, retry: bool = True) -> bool: ...
