from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.calls import Call, Note, Reply
from gateway.pipeline import Next, RequestStages, build_pipeline, compose


class Recorder:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self._log = log

    async def __call__(self, call: Call, next_: Next) -> Reply:
        self._log.append(self.name)
        reply = await next_(replace(call, alias=call.alias + ">" + self.name))
        return reply.noted(Note("seen", self.name))


class Answerer:
    name = "cache"

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    async def __call__(self, call: Call, next_: Next) -> Reply:
        return self._reply


@pytest.mark.asyncio
async def test_compose_runs_stages_in_order_and_notes_unwind(make_call, make_reply) -> None:
    log: list[str] = []
    seen: list[str] = []

    async def terminal(call: Call) -> Reply:
        seen.append(call.alias)
        return make_reply(b"{}")

    run = compose([Recorder("a", log), Recorder("b", log)], terminal)
    reply = await run(make_call("x"))
    assert log == ["a", "b"]
    assert seen == ["x>a>b"]
    assert [n.value for n in reply.notes] == ["b", "a"]


@pytest.mark.asyncio
async def test_a_stage_may_answer_without_calling_next(make_call, make_reply) -> None:
    async def terminal(call: Call) -> Reply:
        raise AssertionError("must not be reached")

    cached = make_reply(b'{"cached":true}')
    run = compose([Answerer(cached)], terminal)
    assert await run(make_call()) is cached


@pytest.mark.asyncio
async def test_build_pipeline_keeps_the_order_and_skips_empty_slots(make_call, make_reply) -> None:
    log: list[str] = []

    async def terminal(call: Call) -> Reply:
        log.append("fallback")
        return make_reply(b"{}")

    stages = RequestStages(
        admission=Recorder("admission", log),
        idempotency=None,
        exact_cache=None,
        semantic_cache=Recorder("semantic", log),
        budget=None,
        router=Recorder("router", log),
        escalation=None,
    )
    await build_pipeline(stages, terminal)(make_call())
    assert log == ["admission", "semantic", "router", "fallback"]
