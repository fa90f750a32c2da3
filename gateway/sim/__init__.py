"""The simulated LLM provider: a real HTTP server speaking the OpenAI and Anthropic formats.

Use it for the zero-API-key demo, for tests and for fault drills (see docs/sim.md)::

    run_sim("127.0.0.1", 9100, "routing_rules/sim.yaml")        # CLI: blocks
    sim = await start_sim("127.0.0.1", 0, load_sim_config(None))  # in-process
    ...
    await sim.close()
"""

from gateway.sim.config import (
    FaultKind,
    FaultRule,
    ModelBehaviour,
    RuntimeFaultRule,
    SimConfig,
    SimConfigError,
    load_sim_config,
)
from gateway.sim.server import SimServer, Simulator, run_sim, start_sim

__all__ = [
    "FaultKind",
    "FaultRule",
    "ModelBehaviour",
    "RuntimeFaultRule",
    "SimConfig",
    "SimConfigError",
    "SimServer",
    "Simulator",
    "load_sim_config",
    "run_sim",
    "start_sim",
]
