"""The Stage interface and the ONE place the order of the pipeline is written.

Request level, once per call::

    admission -> idempotency -> exact cache -> semantic cache -> budget -> router -> escalation
    -> fallback chain

Target level, once per attempt, one stack per configured target::

    ejection (circuit breaker) -> throttle (provider RPM/TPM) -> timeout -> provider

A slot that no issue has filled yet is ``None`` and is skipped; the order does not change when it
is filled. Composition happens once at start-up (and on reload), so a call pays one ``await`` per
present stage and nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.calls import Call, Reply

Next = Callable[[Call], Awaitable[Reply]]


class Stage(Protocol):
    """One step. Pass the call on, answer early, call ``next_`` again, or raise a GatewayError."""

    name: str

    async def __call__(self, call: Call, next_: Next) -> Reply: ...


def compose(stages: Sequence[Stage], terminal: Next) -> Next:
    """Chain ``stages`` in order in front of ``terminal``; the first stage runs first."""
    run = terminal
    for stage in reversed(stages):
        # A partial, not a wrapper coroutine: each stage costs one coroutine frame, not two
        # (every resumption of a deep await chain walks all of its frames).
        run = functools.partial(stage, next_=run)
    return run


@dataclass(frozen=True, slots=True)
class RequestStages:
    """The request-level slots, in pipeline order. ``None``: not configured (skipped)."""

    admission: Stage | None
    idempotency: Stage | None
    exact_cache: Stage | None
    semantic_cache: Stage | None
    budget: Stage | None
    router: Stage | None
    escalation: Stage | None


@dataclass(frozen=True, slots=True)
class TargetStages:
    """The per-target slots, in order, in front of that target's provider."""

    ejection: Stage | None
    throttle: Stage | None
    timeout: Stage | None


def build_pipeline(stages: RequestStages, fallback_chain: Next) -> Next:
    ordered = (
        stages.admission,
        stages.idempotency,
        stages.exact_cache,
        stages.semantic_cache,
        stages.budget,
        stages.router,
        stages.escalation,
    )
    return compose([s for s in ordered if s is not None], fallback_chain)


def build_target_stack(stages: TargetStages, provider: Next) -> Next:
    ordered = (stages.ejection, stages.throttle, stages.timeout)
    return compose([s for s in ordered if s is not None], provider)
