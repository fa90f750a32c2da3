"""Fault drills (``tiergate drill``): prove the fallback chain on a running deployment.

The drill is an HTTP client of a running gateway whose targets are simulated providers: it drives
open-loop traffic with the official ``openai`` client, injects faults through the sim's
``/_sim/faults``, watches the breakers through the gateway's admin API, and prints a report per
scenario, judged against the figures of issue 3. The last line printed is one JSON object
``{"scenarios": N, "passed": M, "failed": [names]}``. See docs/drills.md.

It imports none of the gateway's stages, targets, pipeline or HTTP edge: what it reports is what
an operator outside the process can see.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

import openai

from gateway.drill.endpoints import AdminApi, DrillError, SimApi, topology_from_admin
from gateway.drill.figures import summarize
from gateway.drill.report import ScenarioResult, final_line, header, render
from gateway.drill.runner import openai_clients
from gateway.drill.scenarios import SCENARIO_NAMES, SCENARIOS
from gateway.drill.session import Session, Settings, discover

__all__ = ["SCENARIO_NAMES", "ScenarioResult", "drill", "run_drill"]

DEFAULT_SIM = "http://127.0.0.1:9100"


async def drill(
    gateway: str,
    key: str,
    admin_key: str | None,
    sim: str,
    names: Sequence[str],
    alias: str,
    settings: Settings,
    out: Callable[[str], None] = print,
) -> list[ScenarioResult]:
    """Run the named scenarios one after the other; print each block as it finishes."""
    root = gateway.rstrip("/").removesuffix("/v1")
    admin = AdminApi(root, admin_key) if admin_key else None
    sim_api = SimApi(sim)
    results: list[ScenarioResult] = []
    async with openai_clients(f"{root}/v1", key) as clients:
        try:
            if admin is not None:
                topology = topology_from_admin(await admin.targets(), alias)
            else:
                topology = await discover(clients, sim_api, alias)
        except (DrillError, openai.OpenAIError) as exc:
            out(f"tiergate drill: cannot start: {exc}")
            return [ScenarioResult(name, error=f"not run: {exc}") for name in names]
        for line in header(root, sim_api.base_url, topology, settings):
            out(line)
        session = Session(clients, admin, sim_api, topology, settings)
        for name in names:
            scenario = SCENARIOS[name]
            try:
                evidence = await session.run(scenario)
            except (DrillError, openai.OpenAIError) as exc:
                result = ScenarioResult(name, error=str(exc))
            else:
                summary = summarize(evidence)
                checks = scenario.judge(evidence, summary)
                result = ScenarioResult(name, checks, summary, evidence)
            results.append(result)
            for line in render(result):
                out(line)
        if admin is not None:  # leave the alias as we found it: every breaker closed
            try:
                for target in topology.targets:
                    await admin.restore(target.name)
            except DrillError as exc:
                out(f"tiergate drill: could not restore the targets: {exc}")
    return results


def run_drill(
    gateway: str,
    key: str,
    admin_key: str | None,
    sim: str,
    scenarios: list[str] | None,
    all_: bool,
    alias: str,
    rate: float,
    duration_s: float,
    quick: bool,
) -> int:
    """The ``tiergate drill`` command: 0 when every scenario passed, 1 otherwise, 2 on a usage
    error (nothing run). Prints the report; its last line is the JSON summary."""
    names = list(SCENARIO_NAMES) if all_ else list(dict.fromkeys(scenarios or []))
    unknown = [n for n in names if n not in SCENARIOS]
    problems = []
    if not names:
        problems.append("name a scenario (--scenario NAME) or pass --all")
    if unknown:
        problems.append(f"unknown scenario(s) {unknown}; known: {list(SCENARIO_NAMES)}")
    if rate <= 0 or duration_s <= 0:
        problems.append("--rate and --duration must be positive")
    if problems:
        for problem in problems:
            print(f"tiergate drill: {problem}", file=sys.stderr)
        return 2
    settings = Settings.of(rate, duration_s, quick)
    results = asyncio.run(drill(gateway, key, admin_key, sim, names, alias, settings))
    print(final_line(results), flush=True)
    return 0 if results and all(r.passed for r in results) else 1
