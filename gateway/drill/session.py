"""Running one scenario against a live gateway and sim: settle, warm up, (baseline), run, collect.

The order for every scenario: remove leftover faults on the alias's models; restore the alias's
targets through the admin API (so every scenario starts with closed breakers) and wait until the
primary serves; warm up (connections, observed latencies); for primary-down, measure the
secondary's own p99 with the primary ejected; read the sim's counters; then run: traffic for the
whole run, the watch polling breakers and counters, and the fault timeline. Faults the drill added
are always removed, even when the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import openai

from gateway.drill.endpoints import (
    ASSUMED_BUDGET,
    ASSUMED_TIMEOUTS,
    AdminApi,
    DrillError,
    SimApi,
    TargetInfo,
    Topology,
)
from gateway.drill.figures import Evidence, FaultPlan, percentile
from gateway.drill.probes import Watch
from gateway.drill.runner import Driver, Load, Outcome, openai_clients
from gateway.drill.scenarios import Scenario

DEADLINE_SLACK_S = 1.0  # a request's deadline: the alias's largest total timeout + this
SETTLE_WITH_ADMIN_S = 10.0  # restored breakers: the primary serves at once (a 429 may linger)
SETTLE_WITHOUT_ADMIN_S = 70.0  # no admin API: wait out an open breaker (the longest is 60 s)
RECOVERY_CAP_S = 65.0  # primary-recovers: give up waiting for the primary after this
FLAP_S = 2.0
BASELINE_COLD_SHARE = 0.2  # the baseline's first requests warm the secondary's connections


@contextlib.contextmanager
def steady_heap() -> Iterator[None]:
    """No cyclic-GC pauses while measuring. The openai client's thousands of pydantic models
    make a full collection take ~100 ms here, which the open loop would report as the gateway's
    latency. So: collect once, freeze what is alive (never scanned again), collect nothing
    during the run (a 30 s run at 200 req/s allocates little that only a collection frees)."""
    gc.collect()
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Settings:
    rate: float
    duration_s: float
    warmup_s: float
    baseline_s: float
    hold_s: float  # primary-recovers: keep running this long after the primary is back
    flap_s: float

    @classmethod
    def of(cls, rate: float, duration_s: float, quick: bool) -> Settings:
        if quick:
            d = min(duration_s, 3.0)
            return cls(min(rate, 40.0), d, 0.3, 1.0, 0.5, max(0.25, d / 8))
        return cls(rate, duration_s, 2.0, 5.0, 2.0, FLAP_S)


Clients = Sequence[openai.AsyncOpenAI]


async def send_one(clients: Clients, alias: str, deadline_s: float, n: int) -> Outcome:
    driver = Driver(clients, alias, stream=False, deadline_s=deadline_s, tag="probe")
    return await driver.send(n, asyncio.get_running_loop().time(), 0.0)


async def discover(clients: Clients, sim: SimApi, alias: str) -> Topology:
    """Without the admin API: the primary from a healthy answer's ``x-tiergate-*`` headers, the
    secondary from an answer while the primary's model is down (one request each)."""
    deadline = ASSUMED_TIMEOUTS.total_s + DEADLINE_SLACK_S
    first = await send_one(clients, alias, deadline, 0)
    if not first.ok or first.target is None or first.model is None:
        raise DrillError(f"alias '{alias}' does not answer: {first.error or first.status}")
    targets = [TargetInfo(first.target, first.model, ASSUMED_TIMEOUTS)]
    rule = await sim.fault(first.model, "503")
    try:
        second = await send_one(clients, alias, deadline, 1)
    finally:
        await sim.remove([rule])
    if second.ok and second.target and second.model and second.target != first.target:
        targets.append(TargetInfo(second.target, second.model, ASSUMED_TIMEOUTS))
    return Topology(alias, tuple(targets), ASSUMED_BUDGET, None, complete=False)


class Session:
    def __init__(
        self,
        clients: Clients,
        admin: AdminApi | None,
        sim: SimApi,
        topology: Topology,
        settings: Settings,
    ) -> None:
        self.clients = clients
        self.admin = admin
        self.sim = sim
        self.topo = topology
        self.settings = settings
        self.deadline_s = topology.deadline_total_s + DEADLINE_SLACK_S

    def driver(self, stream: bool, tag: str) -> Driver:
        return Driver(
            self.clients, self.topo.alias, stream=stream, deadline_s=self.deadline_s, tag=tag
        )

    async def settle(self) -> str | None:
        """Close every breaker of the alias and wait until the primary serves. A note if not."""
        loop = asyncio.get_running_loop()
        if self.admin is not None:
            for target in self.topo.targets:
                await self.admin.restore(target.name)
        wait_s = SETTLE_WITH_ADMIN_S if self.admin is not None else SETTLE_WITHOUT_ADMIN_S
        until = loop.time() + wait_s
        n = 0
        while loop.time() < until:
            outcome = await send_one(self.clients, self.topo.alias, self.deadline_s, n)
            if outcome.ok and outcome.target == self.topo.primary.name:
                return None
            n += 1
            await asyncio.sleep(0.2)
        return f"the primary did not serve within {wait_s:g} s before the run"

    async def drive_for(self, seconds: float, driver: Driver) -> Load:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(driver.run(self.settings.rate, stop, loop.time()))
        await asyncio.sleep(seconds)
        stop.set()
        return await task

    async def baseline_p99(self) -> float | None:
        """The secondary's own p99: through the gateway with the primary ejected (admin API),
        else straight from the sim."""
        secondary = self.topo.secondary
        if secondary is None:
            return None
        seconds = self.settings.baseline_s
        if self.admin is not None:
            primary = self.topo.primary.name
            await self.admin.eject(primary, seconds + 30.0, "drill baseline")
            try:
                load = await self.drive_for(seconds, self.driver(False, "baseline"))
            finally:
                await self.admin.restore(primary)
            served = [o for o in load.outcomes if o.ok and o.target == secondary.name]
        else:
            async with openai_clients(f"{self.sim.base_url}/v1", "drill") as direct:
                driver = Driver(
                    direct, secondary.model, stream=False, deadline_s=self.deadline_s, tag="base"
                )
                served = [o for o in (await self.drive_for(seconds, driver)).outcomes if o.ok]
        warm = [o for o in served if o.scheduled_s >= seconds * BASELINE_COLD_SHARE]
        return percentile([o.latency_s for o in warm], 99)

    async def run(self, scenario: Scenario) -> Evidence:
        notes: list[str] = []
        await self.sim.clear(self.topo.models)
        note = await self.settle()
        if note:
            notes.append(note)
        await self.drive_for(self.settings.warmup_s, self.driver(scenario.stream, "warmup"))
        with steady_heap():
            return await self.measure(scenario, notes)

    async def measure(self, scenario: Scenario, notes: list[str]) -> Evidence:
        baseline = await self.baseline_p99() if scenario.baseline else None
        if scenario.baseline:
            await self.settle()
        plans = scenario.faults(self.topo)
        calls_before = await self.sim.calls()

        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.01
        epoch_t0 = time.time() + (t0 - loop.time())
        stop_load, stop_watch = asyncio.Event(), asyncio.Event()
        driver = self.driver(scenario.stream, scenario.name)
        watch = Watch(self.admin, self.sim)
        watch_task = asyncio.create_task(watch.run(t0, stop_watch))
        load_task = asyncio.create_task(driver.run(self.settings.rate, stop_load, t0))
        timeline = Timeline(self, scenario, plans, driver, t0)
        try:
            await timeline.play()
        finally:
            stop_load.set()
            try:
                await self.sim.remove(timeline.rule_ids)
            finally:
                load = await load_task
                stop_watch.set()
                samples = await watch_task
        calls_after = await self.sim.calls()
        if watch.failed_polls:
            notes.append(f"{watch.failed_polls} polls of the admin API or the sim failed")
        return Evidence(
            scenario=scenario.name,
            stream=scenario.stream,
            topology=self.topo,
            load=load,
            samples=samples,
            faults=plans,
            fault_on_s=timeline.on_s,
            fault_full_s=timeline.full_s,
            fault_off_s=timeline.off_s,
            run_s=timeline.end_s,
            rate=self.settings.rate,
            upstream_calls={
                m: calls_after.get(m, 0) - calls_before.get(m, 0) for m in self.topo.models
            },
            baseline_p99_s=baseline,
            epoch_t0=epoch_t0,
            deadline_s=self.deadline_s,
            admin=self.admin is not None,
            notes=notes,
        )


class Timeline:
    """The fault schedule of one run, relative to its t0."""

    def __init__(
        self,
        session: Session,
        scenario: Scenario,
        plans: list[FaultPlan],
        driver: Driver,
        t0: float,
    ) -> None:
        self.session = session
        self.scenario = scenario
        self.plans = plans
        self.driver = driver
        self.t0 = t0
        self.rule_ids: list[int] = []
        self.on_s = self.full_s = self.off_s = self.end_s = 0.0

    def now_s(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    async def until(self, at_s: float) -> None:
        delay = at_s - self.now_s()
        if delay > 0:
            await asyncio.sleep(delay)

    async def inject(self) -> None:
        for plan in self.plans:
            params = dict(plan.params)
            self.rule_ids.append(await self.session.sim.fault(plan.model, plan.kind, **params))

    async def remove(self) -> None:
        ids, self.rule_ids = self.rule_ids, []
        await self.session.sim.remove(ids)

    async def play(self) -> None:
        settings, scenario = self.session.settings, self.scenario
        duration = settings.duration_s
        await self.until(duration * scenario.on_at)
        self.on_s = self.now_s()
        await self.inject()
        self.full_s = self.now_s()  # faults are set one target at a time
        off_at = duration * scenario.off_at
        if scenario.flap:
            down = True
            while self.now_s() + settings.flap_s < off_at:
                await asyncio.sleep(settings.flap_s)
                await (self.remove() if down else self.inject())
                down = not down
        await self.until(off_at)
        await self.remove()
        self.off_s = self.now_s()
        if scenario.until_recovered:
            await self.wait_for_primary()
        await self.until(duration)
        self.end_s = self.now_s()

    async def wait_for_primary(self) -> None:
        primary = self.session.topo.primary.name
        give_up = self.off_s + RECOVERY_CAP_S
        seen = 0
        while self.now_s() < give_up:
            outcomes = self.driver.load.outcomes
            back = any(
                o.ok and o.target == primary and o.scheduled_s >= self.off_s
                for o in outcomes[seen:]
            )
            seen = len(outcomes)
            if back:
                await asyncio.sleep(self.session.settings.hold_s)
                return
            await asyncio.sleep(0.05)
