"""BatchScheduler: finds batches with work left, claims them, and runs each on the spawner.

Policy: every ``period_s`` the scheduler renews the leases of the batches this process runs
(a lost lease cancels the run: another process has it) and claims active batches nobody holds,
up to ``MAX_RUNS`` at a time. On start-up this is what resumes the batches that were running
when the gateway stopped: their leases were released on a clean stop (or expire after
``LEASE_MS`` after a crash), and their finished lines are not run again. Runs are tasks of the
app's tracked spawner, so shutdown cancels and awaits them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.jobs.runner import BatchRun, Recorder, RunDeps
from gateway.jobs.store import JobStore
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.surface.base import Surface
from gateway.tasks import Spawner

log = logging.getLogger("tiergate.jobs")

LEASE_MS = 15_000
MAX_RUNS = 8  # batches one process runs at once (their lines share one concurrency limit)


class BatchScheduler:
    def __init__(self, deps: RunDeps, spawner: Spawner, period_s: float = 1.0) -> None:
        self._deps = deps
        self._spawner = spawner
        self._period_s = period_s
        self._holder = "proc-" + os.urandom(8).hex()
        self._running: dict[str, asyncio.Task[Any]] = {}

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                log.warning("batch scheduler: state store unavailable: %s", exc)
            await asyncio.sleep(self._period_s)

    async def tick(self) -> None:
        store = self._deps.store
        for batch_id, task in list(self._running.items()):
            if task.done():
                del self._running[batch_id]
            elif not await store.renew(batch_id, self._holder, LEASE_MS):
                log.warning("batch %s: lease lost; another process runs it now", batch_id)
                task.cancel()
                del self._running[batch_id]
        for batch_id in await store.active_ids():
            if len(self._running) >= MAX_RUNS:
                return
            if batch_id in self._running:
                continue
            if await store.claim(batch_id, self._holder, LEASE_MS):
                self._running[batch_id] = self._spawner.spawn(
                    self._run(batch_id), f"batch-{batch_id}"
                )

    async def _run(self, batch_id: str) -> None:
        try:
            await BatchRun(batch_id, self._deps).run()
        finally:
            # A clean stop hands the batch on at once instead of after the lease expires.
            with contextlib.suppress(RedisError, OSError):
                await self._deps.store.release(batch_id, self._holder)


def batch_surfaces(redis: aioredis.Redis, spawner: Spawner) -> dict[str, Surface]:
    """The endpoints a batch line reaches by translation to chat, as the edge serves them."""
    from gateway.surface.completions import LegacyCompletions
    from gateway.surface.responses import ResponsesSurface
    from gateway.surface.responses_store import ResponseStore

    return {
        "/v1/completions": LegacyCompletions(),
        "/v1/responses": ResponsesSurface(ResponseStore(lambda: redis, spawner)),
    }


def start_batches(
    settings: Settings,
    redis: aioredis.Redis,
    spawner: Spawner,
    runtime: Callable[[], Runtime | None],
    recorder: Recorder,
) -> BatchScheduler:
    """Start the process's batch scheduler on the spawner (called once, in the lifespan)."""
    deps = RunDeps(
        store=JobStore(redis),
        runtime=runtime,
        slots=asyncio.Semaphore(settings.batch_concurrency),
        record=recorder,
        concurrency=settings.batch_concurrency,
        max_lines=settings.batch_max_lines,
        headroom=settings.batch_headroom,
        surfaces=batch_surfaces(redis, spawner),
    )
    scheduler = BatchScheduler(deps, spawner)
    spawner.spawn(scheduler.run_forever(), "batch-scheduler")
    return scheduler
