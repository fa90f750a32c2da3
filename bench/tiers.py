"""Router decision cost inside the gateway: the router stage's work per call, in process.

Measures what the router slot adds to a call, with a next_ that returns at once: the data-class
check, the tier choice (rules signals, or the learned model with its embedding) and the notes.

    python -m bench.tiers [--calls 20000] [--learned routing_rules/artifacts/router]

Prints p50/p99 in milliseconds per kind. The prompts are the demo dataset's (GSM8K and MMLU
questions, 100-1,500 characters), sent as a user message after a short system prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from gateway.calls import Call, CallKind, Principal, Reply, ReplyStats
from gateway.requests import ChatRequest
from gateway.rules import parse_rules
from gateway.stages.tier_router import Scorer, TierRouter

ROOT = Path(__file__).resolve().parents[1]

RULES = """
targets:
  cheap: {provider: openai, model: c, api_base: "http://127.0.0.1:1/v1"}
  strong: {provider: openai, model: s, api_base: "http://127.0.0.1:1/v1"}
aliases:
  plain: {targets: [cheap, strong]}
  ruled:
    tiers: [{name: cheap, targets: [cheap]}, {name: strong, targets: [strong]}]
    router: {kind: rules}
  learned:
    tiers: [{name: cheap, targets: [cheap]}, {name: strong, targets: [strong]}]
    router: {kind: fixed}
"""


async def done(call: Call) -> Reply:
    async def nothing() -> Any:
        return
        yield b""

    return Reply(nothing(), ReplyStats())


def calls(alias: str) -> list[Call]:
    lines = (ROOT / "data/sim/quality_demo.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        prompt = json.loads(line)["prompt"]
        request = ChatRequest.model_validate(
            {
                "model": alias,
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": prompt},
                ],
            }
        )
        out.append(Call("r", Principal("k", "t", None), CallKind.CHAT, alias, request, 0, "v"))
    return out


async def measure(stage: TierRouter, alias: str, n: int) -> tuple[float, float]:
    sample = calls(alias)
    for call in sample:  # warm up (and fill the embedder's LRU only if it is a cold measure)
        await stage(call, done)
    times = []
    for i in range(n):
        call = sample[i % len(sample)]
        start = time.perf_counter_ns()
        await stage(call, done)
        times.append((time.perf_counter_ns() - start) / 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def learned_stage(artifact: Path, cold: bool) -> tuple[TierRouter, Any]:
    import importlib

    from cache.embedder import load_embedder

    rules = parse_rules(RULES, "bench", env={})
    learned = importlib.import_module("gateway.routing.learned")
    scorer: Scorer = learned.LearnedRouter.load(artifact)
    # lru_size 0: every call embeds its prompt (the cost a first-seen prompt pays).
    embedder = load_embedder(lru_size=0 if cold else 10_000)

    async def embed(text: str) -> object:
        return (await embedder.embed([text]))[0]

    aliases = dict(rules.aliases)
    policy = aliases["learned"].router
    assert policy is not None
    aliases["learned"] = aliases["learned"].model_copy(
        update={"router": policy.model_copy(update={"kind": "learned"})}
    )
    stage = TierRouter(aliases, rules.targets, [], {"learned": scorer}, embed)
    return stage, embedder


async def main(args: argparse.Namespace) -> None:
    rules = parse_rules(RULES, "bench", env={})
    stage = TierRouter(rules.aliases, rules.targets, [])
    for alias, label in (("plain", "no tiers (plain alias)"), ("ruled", "rules kind")):
        p50, p99 = await measure(stage, alias, args.calls)
        print(f"{label:32s} p50 {p50:.4f} ms  p99 {p99:.4f} ms")
    if args.learned:
        for cold in (True, False):
            learned, embedder = learned_stage(Path(args.learned), cold)
            p50, p99 = await measure(learned, "learned", max(200, args.calls // 20))
            label = "learned, embedding each call" if cold else "learned, embedding cached"
            print(f"{label:32s} p50 {p50:.4f} ms  p99 {p99:.4f} ms")
            await embedder.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--learned", default=None, help="a learned router's artifact directory")
    asyncio.run(main(parser.parse_args()))
