"""Runtime: everything built from one version of the rules, swapped as one reference on reload.

``build_runtime`` runs at start-up (and on reload): it builds the key table, one stack per target
and the request pipeline. Nothing here runs per request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from cache.exact import ExactStore
from gateway.governance.keystore import Keys
from gateway.governance.ledger import Ledger
from gateway.governance.tokens import build_counters, tokenizer_for
from gateway.pipeline import (
    Next,
    RequestStages,
    Stage,
    TargetStages,
    build_pipeline,
    build_target_stack,
)
from gateway.rules import Alias, Price, Rules, Target
from gateway.rules import Breaker as BreakerPolicy
from gateway.stages.admission import Admission
from gateway.stages.budget import Budget
from gateway.stages.escalation import Escalation, plan_of
from gateway.stages.exact_cache import ExactCache
from gateway.stages.fallback import FallbackChain
from gateway.stages.idempotency import IdempotencyStage
from gateway.stages.observed import Observations
from gateway.stages.queueing import CapacityQueue
from gateway.stages.retry_budget import RetryBudget
from gateway.stages.tier_router import Scorer, TierRouter
from gateway.targets.breaker import Breaker
from gateway.targets.ejection import Ejection, OnTransition
from gateway.targets.openai_provider import OpenAIProvider
from gateway.targets.throttle import Throttle
from gateway.targets.timeout import Timeout
from gateway.targets.upstream import UpstreamPool
from gateway.tasks import Spawner

if TYPE_CHECKING:  # numpy and the model load only when an alias enables the semantic cache
    from cache.semantic import SemanticLibrary
    from gateway.tracing import Tracing


@dataclass(frozen=True, slots=True)
class Runtime:
    rules: Rules
    keys: Keys
    pipeline: Next
    chain: FallbackChain
    breakers: Mapping[str, Breaker]
    throttles: Mapping[str, Throttle]
    exact_store: ExactStore
    semantic: SemanticLibrary | None = None
    semantic_cache: Stage | None = None  # the stage itself (what its aliases have learned)

    @property
    def config_version(self) -> str:
        return self.rules.config_version

    def target_status(self, name: str) -> dict[str, Any]:
        """One target's health for the admin API: breaker state and what was observed."""
        target = self.rules.targets[name]
        now = time.monotonic()
        to_epoch = time.time() - now  # monotonic -> wall clock, for humans and other hosts
        snap = self.breakers[name].snapshot(now)
        seen = self.chain.observations.view(name)
        return {
            "name": name,
            "model": target.model,
            "provider": target.provider,
            "api_base": target.api_base,
            "timeouts": target.timeouts.model_dump(),
            "limits": target.limits.model_dump(),
            "state": snap.state,
            "reason": snap.reason,
            "opened_at": None if snap.opened_at is None else snap.opened_at + to_epoch,
            "open_until": None if snap.open_until is None else snap.open_until + to_epoch,
            "calls": seen.calls,
            "failures": seen.failures,
            "error_ratio": seen.error_ratio,
            "window_calls": snap.calls,
            "window_failures": snap.failures,
            "ttft_p50_ms": seen.ttft_p50_ms,
            "ttft_p95_ms": seen.ttft_p95_ms,
            "ttft_p99_ms": seen.ttft_p99_ms,
            "transitions": snap.transitions,
            "last_error": seen.last_error,
        }

    def eject(self, name: str, for_s: float, reason: str) -> None:
        now = time.monotonic()
        self.breakers[name].eject(now, now + for_s, reason)

    def restore(self, name: str) -> None:
        self.breakers[name].restore(time.monotonic())


def build_provider(
    name: str, target: Target, pool: UpstreamPool, tracing: Tracing | None = None
) -> Next:
    api_key = os.environ.get(target.api_key_env) if target.api_key_env else None
    inject = tracing.inject if tracing is not None else None
    if target.provider in ("openai", "azure"):
        return OpenAIProvider(name, target, pool, api_key, inject)
    from gateway.targets.litellm_provider import LiteLLMProvider  # only when configured

    return LiteLLMProvider(name, target, api_key, inject)


@dataclass(frozen=True, slots=True)
class Deps:
    """Clients a runtime is built with; they outlive any one version of the rules."""

    pool: UpstreamPool
    redis: aioredis.Redis
    spawner: Spawner
    on_transition: OnTransition | None = None
    alert: Callable[[str, dict[str, object]], None] | None = None
    semantic: SemanticLibrary | None = None  # required when an alias enables the semantic cache
    # or uses a learned router that reads the prompt's embedding
    on_semantic_verified: Callable[[str, bool, float], None] | None = None
    on_semantic_cut: Callable[[str, float], None] | None = None  # alias, its learned cut
    tracing: Tracing | None = None  # only when OTEL_* asks for traces: spans are composed in


def carried_breaker(
    name: str, target: Target, policy: BreakerPolicy, previous: Runtime | None
) -> Breaker:
    """A reload keeps a target's breaker (and what it learned) when its policy is unchanged."""
    if previous is not None:
        old = previous.breakers.get(name)
        if old is not None and old.policy == policy:
            return old
    # A probe that never reports (a reply nobody closed) frees its slot after its deadlines.
    lease_s = target.timeouts.connect_s + target.timeouts.total_s + 5.0
    return Breaker(policy, probe_lease_s=lease_s)


def carried_throttle(name: str, target: Target, previous: Runtime | None) -> Throttle:
    """A reload keeps what a throttle learned from its upstream when its limits are unchanged."""
    if previous is not None:
        old = previous.throttles.get(name)
        if old is not None and previous.rules.targets.get(name, target).limits == target.limits:
            return old
    return Throttle(name, target.limits)


def worst_price(rules: Rules, alias: Alias) -> Price:
    """The most a token can cost on this alias: what a reservation must assume."""
    prices = [rules.targets[t].price for t in alias.target_names()]
    return Price(
        input_usd_per_mtok=max(p.input_usd_per_mtok for p in prices),
        output_usd_per_mtok=max(p.output_usd_per_mtok for p in prices),
    )


def semantic_stage(rules: Rules, deps: Deps, previous: Runtime | None = None) -> Stage | None:
    """The semantic cache stage, when an alias enables it (imported only then); it keeps the
    cuts the previous rules' stage learned under unchanged false-hit bounds."""
    policies = rules.semantic_policies()
    if not policies:
        return None
    if deps.semantic is None:
        raise RuntimeError("an alias enables the semantic cache but no library was opened")
    from cache.bound_store import BoundStore
    from gateway.stages.semantic_cache import SemanticCache

    before = None if previous is None else previous.semantic_cache
    return SemanticCache(
        deps.semantic,
        policies,
        deps.spawner,
        deps.on_semantic_verified,
        on_cut=deps.on_semantic_cut,
        carried=before.bounds if isinstance(before, SemanticCache) else None,
        shared=BoundStore(deps.redis),
    )


def learned_scorers(rules: Rules) -> dict[str, Scorer]:
    """The learned routers' models (small files, loaded at start-up and on reload)."""
    out: dict[str, Scorer] = {}
    for name, alias in rules.aliases.items():
        policy = alias.router
        if policy is not None and policy.kind == "learned" and policy.artifact is not None:
            from gateway.routing.learned import LearnedRouter  # numpy: only when configured

            out[name] = LearnedRouter.load(rules.base_dir / policy.artifact)
    return out


def router_stage(rules: Rules, deps: Deps) -> TierRouter:
    scorers = learned_scorers(rules)
    embed = None
    if any(s.needs_embedding for s in scorers.values()):
        if deps.semantic is None:
            raise RuntimeError("a learned router needs the embedding model, which was not opened")
        embedder = deps.semantic.embedder

        async def embed_one(text: str) -> object:
            return (await embedder.embed([text]))[0]

        embed = embed_one
    return TierRouter(rules.aliases, rules.targets, rules.data_classes, scorers, embed)


def escalation_stage(rules: Rules) -> Escalation | None:
    from gateway.escalation.gates import build_gates

    plans = {
        name: plan_of(build_gates(a.escalation.gates, rules.base_dir), a.escalation.streaming)
        for name, a in rules.aliases.items()
        if a.escalation is not None
    }
    if not plans:
        return None
    from gateway.stages.router import route_of

    verifier_aliases = {
        spec.alias
        for a in rules.aliases.values()
        if a.escalation is not None
        for spec in a.escalation.gates
        if spec.kind == "verifier"
    }
    routes = {name: route_of(name, rules.aliases[name]) for name in verifier_aliases}
    return Escalation(plans, {name: t.price for name, t in rules.targets.items()}, routes)


def calls_per_request(rules: Rules) -> dict[str, int]:
    """The most answers one request of an alias may be charged for: every tier of its ladder,
    the judged ones with their extra samples."""
    out: dict[str, int] = {}
    for name, alias in rules.aliases.items():
        if alias.escalation is None or len(alias.tiers) < 2:
            continue
        from gateway.escalation.gates import build_gates

        gates = build_gates(alias.escalation.gates, rules.base_dir)
        samples = max((g.samples for g in gates), default=0)
        verifiers = sum(1 for spec in alias.escalation.gates if spec.kind == "verifier")
        out[name] = (len(alias.tiers) - 1) * (1 + samples + verifiers) + 1
    return out


def build_runtime(rules: Rules, deps: Deps, previous: Runtime | None = None) -> Runtime:
    pool = deps.pool
    stacks: dict[str, Next] = {}
    breakers: dict[str, Breaker] = {}
    throttles: dict[str, Throttle] = {}
    for name, target in rules.targets.items():
        breaker = carried_breaker(
            name, target, target.breaker or rules.resilience.breaker, previous
        )
        breakers[name] = breaker
        throttles[name] = carried_throttle(name, target, previous)
        stages = TargetStages(
            ejection=Ejection(name, breaker, on_transition=deps.on_transition),
            throttle=throttles[name],
            timeout=Timeout(name, target.timeouts.first_token_s, target.timeouts.total_s),
        )
        stack = build_target_stack(stages, build_provider(name, target, pool, deps.tracing))
        stacks[name] = stack if deps.tracing is None else deps.tracing.attempt(name, target, stack)
    exact_store = ExactStore(deps.redis)
    semantic = semantic_stage(rules, deps, previous)
    request_stages = RequestStages(
        admission=Admission(rules.aliases),
        idempotency=IdempotencyStage(deps.redis, rules.governance.idempotency),
        exact_cache=ExactCache(
            exact_store,
            {name: a.cache or rules.exact_cache for name, a in rules.aliases.items()},
            frozenset(name for name, a in rules.aliases.items() if a.stale_on_failure),
            deps.spawner,
        ),
        semantic_cache=semantic,
        budget=Budget(
            Ledger(deps.redis),
            rules.governance,
            worst_price={name: worst_price(rules, a) for name, a in rules.aliases.items()},
            target_price={name: t.price for name, t in rules.targets.items()},
            spawner=deps.spawner,
            alert=deps.alert,
            prompt_counters=build_counters(
                {name: a.target_names() for name, a in rules.aliases.items()},
                {n: tokenizer_for(t.model, t.tokenizer) for n, t in rules.targets.items()},
            ),
            calls_per_request=calls_per_request(rules),
        ),
        router=router_stage(rules, deps),
        escalation=escalation_stage(rules),
    )
    if deps.tracing is not None:
        request_stages = deps.tracing.stages(request_stages)
    policy = rules.resilience
    chain = FallbackChain(
        stacks,
        windows={name: t.context_window for name, t in rules.targets.items()},
        policy=policy,
        budget=RetryBudget(policy.retry_budget_ratio, policy.retry_budget_min_per_s),
        observations=previous.chain.observations if previous else Observations(),
        hedges={name: a.hedge for name, a in rules.aliases.items() if a.hedge is not None},
        retries={name: t.retries for name, t in rules.targets.items()},
        queue=CapacityQueue(rules.governance.queue_max_waiting, rules.governance.queue_max_wait_s),
    )
    return Runtime(
        rules=rules,
        keys=Keys(rules.keys, deps.redis),
        pipeline=build_pipeline(request_stages, chain),
        chain=chain,
        breakers=breakers,
        throttles=throttles,
        exact_store=exact_store,
        semantic=deps.semantic,
        semantic_cache=semantic,
    )
