"""Router slot: resolve the alias to its targets, pick the starting tier, keep data in bounds.

Policy, in the order it applies:

- Sensitivity first. A call's data classes are its key's ``clearance`` (unless "public") plus
  the ``x-tiergate-data-class`` request header; a header can add a class, never remove the key's.
  Only targets approved for every class of the call are kept, in every tier; tiers left empty are
  dropped. No target left: the call fails closed (403 ``data_class_not_allowed``). Escalation,
  fallback and hedging only ever see the filtered routes, so no path reaches another target.
- Aliases without tiers: their targets in order (the plain alias router, precomputed).
- Starting tier, first rule that applies: ``x-tiergate-tier`` (keys with ``tier_header``), the
  feature's pinned tier (``router.features``), then the router's kind: ``fixed`` (``start``),
  ``rules`` (request signals, ``gateway.routing.signals``) or ``learned`` (a trained model over
  the prompt's embedding; the embedder's LRU shares the semantic cache's work on the same text).
  Both scored kinds send the call to the strongest tier when its score reaches the cut that
  sends about ``strong_share`` of calls there (calibrated on the training data); else the
  cheapest. Middle tiers are reached by escalation.
- A learned router whose embedding fails or is slow starts the call on the cheapest tier (the
  escalation gates still judge it) and says so in its notes: routing never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from gateway import notes as nk
from gateway.calls import Call, Note, Reply, Route
from gateway.errors import InvalidRequest, NotCleared
from gateway.pipeline import Next
from gateway.requests import ChatRequest
from gateway.routing.signals import last_user_text, signals_of
from gateway.rules import Alias, RouterPolicy, Target
from gateway.stages.router import route_of

log = logging.getLogger("tiergate.router")

DATA_CLASS_HEADER = "x-tiergate-data-class"
TIER_HEADER = "x-tiergate-tier"
FEATURE_HEADER = "x-tiergate-feature"


def route_pin(call: Call) -> str:
    """What the caller pinned about the route: a tier by header (keys with ``tier_header``), a
    feature. The caches run before this router, so they keep answers apart by it: a call that
    pins the strongest tier is never answered with a cheaper tier's cached answer."""
    parts = []
    asked = call.headers.get(TIER_HEADER)
    if asked is not None and call.principal.tier_header:
        parts.append(f"tier={asked}")
    feature = call.headers.get(FEATURE_HEADER)
    if feature is not None:
        parts.append(f"feature={feature}")
    return ";".join(parts)


EMBED_TIMEOUT_S = 0.25

Embed = Callable[[str], Awaitable[Any]]


class Scorer(Protocol):
    """A learned router model (``gateway.routing.learned.LearnedRouter``)."""

    @property
    def needs_embedding(self) -> bool: ...

    @property
    def version(self) -> str: ...

    def score(self, text: str, embedding: Any) -> float: ...

    def threshold_for(self, strong_share: float) -> float: ...


def tier_routes(name: str, alias: Alias, allowed: Callable[[str], bool]) -> tuple[Route, ...]:
    """The alias's ladder, cheapest first, keeping only ``allowed`` targets; each route knows
    the tiers above it (for escalation)."""
    rungs: list[Route] = []
    for tier_name, entries in alias.tier_entries():
        kept = [e for e in entries if allowed(e.target)]
        if not kept:
            continue
        sub = Alias(targets=list(kept))
        rungs.append(replace(route_of(name, sub), tier=tier_name if alias.tiers else ""))
    ladder: list[Route] = []
    for i in range(len(rungs) - 1, -1, -1):
        ladder.insert(0, replace(rungs[i], higher=tuple(ladder)))
    return tuple(ladder)


@dataclass(frozen=True, slots=True)
class Plan:
    """What the router knows of one alias, built once per rules version."""

    policy: RouterPolicy | None
    ladders: dict[frozenset[str], tuple[Route, ...]]  # by the call's data classes
    scorer: Scorer | None = None
    cut: float = 0.0  # score at or above which a call starts on the strongest tier
    escalates: bool = False  # the escalation stage notes the tier it served, not the router


class TierRouter:
    name = "router"

    def __init__(
        self,
        aliases: Mapping[str, Alias],
        targets: Mapping[str, Target],
        data_classes: Sequence[str],
        scorers: Mapping[str, Scorer] | None = None,
        embed: Embed | None = None,
    ) -> None:
        self._targets = targets
        self._known = frozenset(data_classes)
        self._aliases = aliases
        self._embed = embed
        self._plans: dict[str, Plan] = {}
        for name, alias in aliases.items():
            scorer = (scorers or {}).get(name)
            policy = alias.router
            cut = scorer.threshold_for(policy.strong_share) if scorer and policy else 0.0
            ladders: dict[frozenset[str], tuple[Route, ...]] = {
                frozenset(): tier_routes(name, alias, lambda _t: True)
            }
            for cls in self._known:  # one class at a time is the common case: build it now
                ladders[frozenset({cls})] = self._ladder(name, alias, frozenset({cls}))
            escalates = alias.escalation is not None
            self._plans[name] = Plan(policy, ladders, scorer, cut, escalates)

    def _ladder(self, name: str, alias: Alias, classes: frozenset[str]) -> tuple[Route, ...]:
        def allowed(target: str) -> bool:
            return classes.issubset(self._targets[target].data_classes)

        return tier_routes(name, alias, allowed)

    def classes_of(self, call: Call) -> frozenset[str]:
        clearance = call.principal.clearance
        asked = call.headers.get(DATA_CLASS_HEADER)
        if clearance == "public" and not asked:
            return frozenset()
        out = set() if clearance == "public" else {clearance}
        for raw in (asked or "").split(","):
            cls = raw.strip()
            if not cls or cls == "public":
                continue
            if cls not in self._known:
                raise InvalidRequest(
                    f"Unknown data class '{cls[:64]}' in {DATA_CLASS_HEADER}.",
                    param=DATA_CLASS_HEADER,
                )
            out.add(cls)
        return frozenset(out)

    async def __call__(self, call: Call, next_: Next) -> Reply:
        plan = self._plans[call.alias]
        classes = self.classes_of(call)
        ladder = plan.ladders.get(classes)
        if ladder is None:  # a combination of classes: built once, then kept
            ladder = self._ladder(call.alias, self._aliases[call.alias], classes)
            plan.ladders[classes] = ladder
        if not ladder:
            raise NotCleared(
                f"No target of model '{call.alias}' is approved for data class "
                f"{', '.join(sorted(classes))}."
            )
        if plan.policy is None or len(ladder) == 1:
            reply = await next_(call.routed(ladder[0]))
            if not classes and not ladder[0].tier:
                return reply  # the plain alias router's fast path: nothing to note
            return reply.noted(*tier_notes(plan, ladder[0], "only", None, classes))
        start, reason, score = await self._start(plan, ladder, call)
        reply = await next_(call.routed(ladder[start]))
        return reply.noted(*tier_notes(plan, ladder[start], reason, score, classes))

    async def _start(
        self, plan: Plan, ladder: tuple[Route, ...], call: Call
    ) -> tuple[int, str, float | None]:
        policy = plan.policy
        assert policy is not None
        names = [r.tier for r in ladder]
        asked = call.headers.get(TIER_HEADER)
        if asked is not None and call.principal.tier_header:
            return index_of(asked, names, self._aliases[call.alias]), "header", None
        feature = call.headers.get(FEATURE_HEADER)
        if feature is not None and feature in policy.features:
            return (
                nearest(policy.features[feature], names, self._aliases[call.alias]),
                "feature",
                None,
            )
        request = call.request
        assert isinstance(request, ChatRequest)
        if policy.kind == "rules":
            points = signals_of(request).points(policy.signals)
            top = points >= policy.signals.strong_points
            return (len(ladder) - 1 if top else 0), "rules", points
        if policy.kind == "learned" and plan.scorer is not None:
            score = await self._learned_score(plan.scorer, request)
            if score is None:
                return 0, "learned-unavailable", None
            return (len(ladder) - 1 if score >= plan.cut else 0), "learned", score
        start = policy.start
        return (nearest(start, names, self._aliases[call.alias]) if start else 0), "fixed", None

    async def _learned_score(self, scorer: Scorer, request: ChatRequest) -> float | None:
        text = last_user_text(request.messages)
        embedding = None
        if scorer.needs_embedding:
            if self._embed is None:
                return None
            try:
                embedding = await asyncio.wait_for(self._embed(text), EMBED_TIMEOUT_S)
            except Exception as exc:  # the embedder never fails a request
                log.warning("router: embedding failed (%s); starting on the cheapest tier", exc)
                return None
        return scorer.score(text, embedding)


def index_of(asked: str, names: list[str], alias: Alias) -> int:
    """The tier a client named; a tier filtered out by its data class means the next one up."""
    declared = [t.name for t in alias.tiers]
    if asked not in declared:
        raise InvalidRequest(
            f"Unknown tier '{asked[:64]}' for model; tiers: {', '.join(declared)}.",
            param=TIER_HEADER,
        )
    return nearest(asked, names, alias)


def nearest(tier: str, names: list[str], alias: Alias) -> int:
    declared = [t.name for t in alias.tiers]
    for candidate in declared[declared.index(tier) :]:
        if candidate in names:
            return names.index(candidate)
    return len(names) - 1


def tier_notes(
    plan: Plan, route: Route, reason: str, score: float | None, classes: frozenset[str]
) -> tuple[Note, ...]:
    notes = [Note(nk.ROUTE_REASON, reason)] if route.tier else []
    if route.tier and not plan.escalates:
        notes.append(Note(nk.TIER, route.tier))
    if score is not None:
        notes.append(Note(nk.ROUTE_SCORE, f"{score:.4f}"))
    if classes:
        notes.append(Note(nk.DATA_CLASS, ",".join(sorted(classes))))
    return tuple(notes)
