"""create_app(settings): the ASGI application. Its lifespan builds every client once.

Start-up order: rules (invalid rules stop the process before anything else), the state store
(embedded Valkey or the configured Redis), the upstream connection pool, then the runtime (keys,
target stacks, pipeline). SIGHUP reloads the rules: a new runtime is built and swapped in as one
reference; in-flight calls finish on the old one; a bad file is rejected and the old one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI

from gateway.governance.alerts import AlertWebhook, SpendWatch
from gateway.governance.budget_use import BudgetUse
from gateway.governance.usage import UsageBook
from gateway.http.edge import ASGIApp, Edge, RuntimeHolder
from gateway.http.jobs import jobs_router
from gateway.http.routes import add_routes, json_response
from gateway.http.surface_edge import with_surfaces
from gateway.jobs.runner import Recorder
from gateway.jobs.scheduler import start_batches
from gateway.rules import Governance, Rules, RulesInvalid, load_rules
from gateway.rules_watch import stamp, watch_rules
from gateway.runtime import Deps, build_runtime
from gateway.settings import Settings
from gateway.state import StateStore
from gateway.targets.board import BreakerBoard
from gateway.targets.upstream import UpstreamPool
from gateway.tasks import Spawner
from gateway.telemetry import Telemetry
from gateway.tracing import open_tracing

if TYPE_CHECKING:
    from cache.semantic import SemanticLibrary
    from gateway.tracing import Tracing

log = logging.getLogger("tiergate.app")


@dataclass(slots=True)
class Services:
    """Clients built in the lifespan and closed on shutdown (no module-level state)."""

    settings: Settings
    telemetry: Telemetry
    spawner: Spawner
    state: StateStore | None = None
    pool: UpstreamPool | None = None
    semantic: SemanticLibrary | None = None  # only when an alias enables the semantic cache
    webhook: AlertWebhook | None = None
    tracing: Tracing | None = None  # OpenTelemetry, only when OTEL_* asks for it

    def deps(self) -> Deps:
        assert self.pool is not None and self.state is not None
        return Deps(
            pool=self.pool,
            redis=self.state.redis,
            spawner=self.spawner,
            on_transition=self.telemetry.breaker_transition,
            alert=self.telemetry.alert,
            semantic=self.semantic,
            on_semantic_verified=self.telemetry.semantic_verified,
            on_semantic_cut=self.telemetry.semantic_cut,
            tracing=self.tracing,
        )

    async def ensure_semantic(self, rules: Rules) -> None:
        """Open the semantic cache's model and store the first time some alias enables it
        (off the event loop). The model and store settings are read once: a restart changes
        them."""
        if self.semantic is None and rules.needs_embedder():
            loop = asyncio.get_running_loop()
            log.info("semantic cache: loading the embedding model")
            self.semantic = await loop.run_in_executor(None, open_semantic, rules, self.settings)

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
        if self.state is not None:
            await self.state.aclose()
        if self.semantic is not None:
            await self.semantic.aclose()  # the embedded index writes its snapshot


def open_semantic(rules: Rules, settings: Settings) -> SemanticLibrary:
    """The embedding model and the vector store (blocking, seconds; once per process)."""
    from cache.semantic import open_library

    policies = rules.semantic_policies()
    library = open_library(
        rules.embedding,
        rules.semantic_cache,
        settings.qdrant_url,
        settings.data_dir,
        settings.model_cache,
        cross_encoder=any(p.cross_encoder for p in policies.values()),
    )
    if policies:  # the model may be loaded for a learned router alone
        ce = "the cross-encoder weighed with the trees"
        log.info("semantic cache: %s decide hits", ce if library.cross_encoder else "the trees")
    return library


async def share_breakers(
    holder: RuntimeHolder, board: BreakerBoard, telemetry: Telemetry, period_s: float
) -> None:
    """Exchange ejections with the other replicas, when the rules ask for it (never per call)."""
    while True:
        await asyncio.sleep(period_s)
        runtime = holder.current
        if runtime is not None and runtime.rules.resilience.share_breakers:
            for c in await board.sync(runtime.breakers):
                telemetry.breaker_transition(c.target, c.old_state, c.new_state, c.reason)


async def flush_every(telemetry: Telemetry, usage: UsageBook, period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        telemetry.flush()
        await usage.flush()


def start_background(
    holder: RuntimeHolder, services: Services, usage: UsageBook, recorder: Recorder
) -> None:
    """The periodic work of a process: log and usage flushes, shared breakers, alerts, and the
    stored batch jobs (``recorder`` accounts their lines like served requests)."""
    assert services.state is not None and services.webhook is not None
    telemetry, spawner, redis = services.telemetry, services.spawner, services.state.redis

    def governance() -> Governance | None:
        return holder.current.rules.governance if holder.current else None

    telemetry.forward_alert = services.webhook
    telemetry.watch_queue(lambda: holder.current.chain.queued if holder.current else 0)
    spawner.spawn(services.webhook.deliver_forever(), "alert-webhook")
    spawner.spawn(SpendWatch(redis, telemetry.alert, governance).run_forever(60.0), "spend-watch")
    spawner.spawn(flush_every(telemetry, usage, 1.0), "flush-logs-and-usage")
    board = BreakerBoard(redis)
    spawner.spawn(share_breakers(holder, board, telemetry, 0.25), "breaker-board")
    start_batches(services.settings, redis, spawner, lambda: holder.current, recorder)

    def rules() -> Rules | None:
        return holder.current.rules if holder.current else None

    use = BudgetUse(redis, rules, telemetry.budget_use)
    spawner.spawn(use.run_forever(services.settings.budget_gauge_s), "budget-use")


async def reload_rules(holder: RuntimeHolder, services: Services) -> None:
    """Read and validate the rules file again and swap in a runtime built from it (SIGHUP or a
    change on disk). In-flight calls finish on the runtime they started with; a bad file is
    logged and counted, and the running rules stay."""
    settings, telemetry = services.settings, services.telemetry
    current = holder.current.config_version if holder.current else None
    try:
        fresh = load_rules(settings.rules)
        await services.ensure_semantic(fresh)
    except RulesInvalid as exc:
        log.error("reload rejected, keeping config %s: %s", current, exc)
        telemetry.reloaded(ok=False)
        return
    except Exception as exc:  # the model or the store could not be opened
        log.error("reload rejected, keeping config %s: semantic cache: %s", current, exc)
        telemetry.reloaded(ok=False)
        return
    holder.current = build_runtime(fresh, services.deps(), previous=holder.current)
    if services.webhook is not None:
        services.webhook.use(fresh.governance.alert_webhook_url)
    telemetry.use_prices({n: t.price for n, t in fresh.targets.items()})
    telemetry.reloaded(ok=True)
    log.info("reloaded rules: config version %s", fresh.config_version)


def create_app(settings: Settings, rules: Rules | None = None) -> ASGIApp:
    """Build the app. ``rules`` may be passed pre-validated (the CLI validates before serving)."""
    initial_stamp = stamp(settings.rules)  # before reading, so no change is missed
    initial = rules if rules is not None else load_rules(settings.rules)
    holder = RuntimeHolder()
    spawner = Spawner()
    telemetry = Telemetry({n: t.price for n, t in initial.targets.items()}, settings.request_log)
    tracing = open_tracing(os.environ, settings.trace_stages)  # None unless OTEL_* asks
    services = Services(settings, telemetry, spawner, tracing=tracing)
    if tracing is not None:
        telemetry.on_outcome = tracing.on_outcome

    reloading = asyncio.Lock()  # a SIGHUP and a file change never build two runtimes at once

    def reload() -> None:
        spawner.spawn(reload_now(), "reload-rules")

    async def reload_now() -> None:
        async with reloading:
            await reload_rules(holder, services)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        services.state = await loop.run_in_executor(
            None, StateStore, settings.redis_url, settings.data_dir
        )
        services.pool = UpstreamPool()
        services.webhook = AlertWebhook(services.pool, initial.governance.alert_webhook_url)
        await services.ensure_semantic(initial)
        holder.current = build_runtime(initial, services.deps())
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, reload)
        usage = UsageBook(services.state.redis)
        holder.usage = usage
        # Batch lines are accounted by an Edge's own bookkeeping (usage, metrics, request log).
        start_background(holder, services, usage, Edge(holder, telemetry, api).record_background)
        if settings.watch_rules_s > 0:
            watch = watch_rules(settings.rules, reload_now, settings.watch_rules_s, initial_stamp)
            spawner.spawn(watch, "watch-rules")
        # Everything built so far lives as long as the process: move it out of the cyclic
        # collector's sight so full collections under load stay short.
        gc.collect()
        gc.freeze()
        log.info(
            "tiergate ready: config version %s, state %s",
            initial.config_version,
            "embedded valkey" if services.state.embedded else "redis",
        )
        try:
            yield
        finally:
            await spawner.aclose()
            telemetry.flush()
            await usage.flush()
            holder.current = None
            await services.aclose()
            if services.tracing is not None:
                await loop.run_in_executor(None, services.tracing.shutdown)

    api = FastAPI(
        title="Tiergate",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    add_routes(api, holder, telemetry, lambda: services.state)
    api.include_router(jobs_router(holder, lambda: services.state, settings, json_response))
    edge = with_surfaces(Edge(holder, telemetry, api), holder, lambda: services.state, spawner)
    return edge if services.tracing is None else services.tracing.edge(edge)
