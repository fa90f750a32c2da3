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
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from gateway.governance.usage import UsageBook
from gateway.http.edge import Edge, RuntimeHolder
from gateway.http.routes import add_routes
from gateway.rules import Rules, RulesInvalid, load_rules
from gateway.runtime import Deps, build_runtime
from gateway.settings import Settings
from gateway.state import StateStore
from gateway.targets.board import BreakerBoard
from gateway.targets.upstream import UpstreamPool
from gateway.tasks import Spawner
from gateway.telemetry import Telemetry

log = logging.getLogger("tiergate.app")


@dataclass(slots=True)
class Services:
    """Clients built in the lifespan and closed on shutdown (no module-level state)."""

    state: StateStore | None = None
    pool: UpstreamPool | None = None


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


def create_app(settings: Settings, rules: Rules | None = None) -> Edge:
    """Build the app. ``rules`` may be passed pre-validated (the CLI validates before serving)."""
    initial = rules if rules is not None else load_rules(settings.rules)
    holder = RuntimeHolder()
    services = Services()
    spawner = Spawner()
    telemetry = Telemetry({n: t.price for n, t in initial.targets.items()}, settings.request_log)

    def deps() -> Deps:
        assert services.pool is not None and services.state is not None
        return Deps(
            pool=services.pool,
            redis=services.state.redis,
            spawner=spawner,
            on_transition=telemetry.breaker_transition,
            alert=telemetry.alert,
        )

    def reload() -> None:
        assert services.pool is not None
        try:
            fresh = load_rules(settings.rules)
        except RulesInvalid as exc:
            current = holder.current.config_version if holder.current else None
            log.error("reload rejected, keeping config %s: %s", current, exc)
            return
        holder.current = build_runtime(fresh, deps(), previous=holder.current)
        telemetry.use_prices({n: t.price for n, t in fresh.targets.items()})
        log.info("reloaded rules: config version %s", fresh.config_version)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        services.state = await loop.run_in_executor(
            None, StateStore, settings.redis_url, settings.data_dir
        )
        services.pool = UpstreamPool()
        holder.current = build_runtime(initial, deps())
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, reload)
        usage = UsageBook(services.state.redis)
        holder.usage = usage
        spawner.spawn(flush_every(telemetry, usage, 1.0), "flush-logs-and-usage")
        board = BreakerBoard(services.state.redis)
        spawner.spawn(share_breakers(holder, board, telemetry, 0.25), "breaker-board")
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
            await services.pool.aclose()
            await services.state.aclose()

    api = FastAPI(
        title="Tiergate",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    add_routes(api, holder, telemetry, lambda: services.state)
    return Edge(holder, telemetry, api)
