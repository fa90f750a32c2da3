"""The escalation stage: gates on the cheaper tier's answer, climbing, allowance (fake next_)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from gateway.calls import Allowance, Call, Note, Reply, ReplyStats, Route
from gateway.errors import AllTargetsFailed, Attempt
from gateway.escalation.gates import Answer, Verdict
from gateway.rules import Price
from gateway.stages.escalation import Escalation, plan_of
from tests.conftest import chunks_of

pytestmark = pytest.mark.asyncio

STRONG = Route("auto", ("strong",), tier="big")
CHEAP = Route("auto", ("cheap",), tier="small", higher=(STRONG,))
PRICES = {
    "cheap": Price(input_usd_per_mtok=1.0, output_usd_per_mtok=2.0),
    "strong": Price(input_usd_per_mtok=10.0, output_usd_per_mtok=20.0),
}


class NeedsWord:
    """A gate: the answer must contain ``word``; asks for logprobs when told to."""

    name = "word"
    samples = 0

    def __init__(self, word: str, needs_logprobs: bool = False) -> None:
        self.word = word
        self.needs_logprobs = needs_logprobs
        self.seen: list[Answer] = []

    def judge(self, answer: Answer) -> Verdict:
        self.seen.append(answer)
        ok = self.word in answer.text
        return Verdict(self.name, ok, 0.25, "ok" if ok else "missing")


def completion(text: str, logprobs: bool = False) -> bytes:
    choice: dict[str, object] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": {"content": [{"token": "x", "logprob": -0.1, "top_logprobs": []}]}
        if logprobs
        else None,
    }
    return orjson.dumps({"object": "chat.completion", "choices": [choice]})


def chunk(text: str | None, finish: str | None = None, logprobs: bool = False) -> bytes:
    delta = {} if text is None else {"content": text}
    lp = {"content": [{"token": text or "", "logprob": -0.2, "top_logprobs": []}]}
    choice = {
        "index": 0,
        "delta": delta,
        "finish_reason": finish,
        "logprobs": lp if logprobs else None,
    }
    return orjson.dumps({"object": "chat.completion.chunk", "choices": [choice]})


def upstream(answers: dict[str, list[bytes] | Exception], log: list[Call]) -> Callable:
    async def next_(call: Call) -> Reply:
        log.append(call)
        assert call.route is not None
        target = call.route.targets[0]
        call.allowance.used += 1
        outcome = answers[target]
        if isinstance(outcome, Exception):
            raise outcome
        stats = ReplyStats(prompt_tokens=100, completion_tokens=10)
        return Reply(chunks_of(*outcome), stats).noted(Note("target", target))

    return next_


def stage(gate: NeedsWord, streaming: str = "buffer") -> Escalation:
    return Escalation({"auto": plan_of([gate], streaming)}, PRICES)


def tiered(make_call, **kw) -> Call:
    return make_call("auto", **kw).routed(CHEAP)


async def body_of(reply: Reply) -> list[bytes]:
    return [c async for c in reply.chunks]


def notes(reply: Reply) -> dict[str, str]:
    return {n.key: n.value for n in reply.notes}


async def test_a_passing_answer_is_served_from_the_cheap_tier(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("Paris")
    reply = await stage(gate)(tiered(make_call), upstream({"cheap": [completion("Paris")]}, log))
    assert [c.route.tier for c in log if c.route] == ["small"]
    assert orjson.loads((await body_of(reply))[0])["choices"][0]["message"]["content"] == "Paris"
    assert notes(reply)["tier"] == "small" and "escalated" not in notes(reply)
    assert reply.stats.earlier_tokens == 0


async def test_a_failed_gate_climbs_and_charges_both_answers(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("Paris")
    answers: dict[str, list[bytes] | Exception] = {
        "cheap": [completion("Lyon")],
        "strong": [completion("Paris")],
    }
    reply = await stage(gate)(tiered(make_call), upstream(answers, log))
    assert [c.route.tier for c in log if c.route] == ["small", "big"]
    assert orjson.loads((await body_of(reply))[0])["choices"][0]["message"]["content"] == "Paris"
    got = notes(reply)
    assert got["tier"] == "big" and got["escalated"] == "word"
    assert got["gate"] == "small:word:missing"
    assert reply.stats.earlier_tokens == 110
    assert reply.stats.earlier_usd == pytest.approx((100 * 1.0 + 10 * 2.0) / 1e6)


async def test_an_outage_of_the_cheap_tier_goes_up(make_call) -> None:
    log: list[Call] = []
    down = AllTargetsFailed("auto", (Attempt("cheap", "ProviderUnavailable", 503, "x", 1.0, None),))
    answers: dict[str, list[bytes] | Exception] = {"cheap": down, "strong": [completion("ok")]}
    reply = await stage(NeedsWord("ok"))(tiered(make_call), upstream(answers, log))
    assert notes(reply)["escalated"] == "unavailable" and notes(reply)["tier"] == "big"


async def test_no_allowance_left_serves_the_cheaper_answer(make_call) -> None:
    log: list[Call] = []
    call = tiered(make_call)
    call.allowance.limit = 1
    answers: dict[str, list[bytes] | Exception] = {
        "cheap": [completion("Lyon")],
        "strong": [completion("Paris")],
    }
    reply = await stage(NeedsWord("Paris"))(call, upstream(answers, log))
    assert len(log) == 1
    assert notes(reply)["escalation"] == "no-allowance" and notes(reply)["tier"] == "small"


async def test_logprobs_asked_for_the_gate_are_not_returned_to_the_client(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("Paris", needs_logprobs=True)
    reply = await stage(gate)(
        tiered(make_call), upstream({"cheap": [completion("Paris", logprobs=True)]}, log)
    )
    asked = log[0].request
    assert getattr(asked, "logprobs", None) is True
    assert gate.seen[0].token_logprobs == (-0.1,)
    body = orjson.loads((await body_of(reply))[0])
    assert body["choices"][0]["logprobs"] is None


async def test_a_stream_is_judged_whole_then_replayed(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("Paris")
    stream = [chunk("Pa"), chunk("ris"), chunk(None, "stop")]
    reply = await stage(gate)(tiered(make_call, stream=True), upstream({"cheap": stream}, log))
    assert gate.seen[0].text == "Paris" and gate.seen[0].finish_reason == "stop"
    assert await body_of(reply) == stream


async def test_streaming_off_passes_streams_through_ungated(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("never")
    stream = [chunk("Lyon"), chunk(None, "stop")]
    reply = await stage(gate, streaming="off")(
        tiered(make_call, stream=True), upstream({"cheap": stream}, log)
    )
    assert gate.seen == [] and await body_of(reply) == stream
    assert notes(reply)["escalation"] == "stream"


async def test_the_strongest_tier_is_never_judged(make_call) -> None:
    log: list[Call] = []
    gate = NeedsWord("never")
    call = make_call("auto").routed(STRONG)
    reply = await stage(gate)(call, upstream({"strong": [completion("x")]}, log))
    assert gate.seen == [] and notes(reply)["tier"] == "big"


async def test_allowance_left() -> None:
    allowance = Allowance()
    assert allowance.left is None
    allowance.limit = 2
    allowance.used = 3
    assert allowance.left == 0


VERIFIER_ROUTE = Route("checker", ("judge",))


def verifier_stage() -> Escalation:
    from gateway.escalation.verifier_prompt import VerifierModelGate

    gates = [NeedsWord("Paris"), VerifierModelGate("checker", 0.5)]
    return Escalation({"auto": plan_of(gates, "buffer")}, PRICES, {"checker": VERIFIER_ROUTE})


@pytest.mark.parametrize(("said", "tiers"), [("yes", ["small"]), ("no", ["small", "big"])])
async def test_a_verifier_model_is_asked_after_the_other_gates_pass(
    make_call, said: str, tiers: list[str]
) -> None:
    log: list[Call] = []
    answers: dict[str, list[bytes] | Exception] = {
        "cheap": [completion("Paris")],
        "judge": [completion(said)],
        "strong": [completion("Paris, France")],
    }
    reply = await verifier_stage()(tiered(make_call), upstream(answers, log))
    asked = [c for c in log if c.route is not None and c.route.alias == "checker"]
    assert len(asked) == 1
    question = asked[0].request.messages[-1].content  # type: ignore[union-attr]
    assert "Paris" in str(question)
    assert [c.route.tier for c in log if c.route and c.route.alias == "auto"] == tiers
    assert notes(reply)["tier"] == tiers[-1]
    assert reply.stats.earlier_tokens >= 110  # the verifier's call is charged too


async def test_a_verifier_is_not_asked_when_a_local_gate_already_failed(make_call) -> None:
    log: list[Call] = []
    answers: dict[str, list[bytes] | Exception] = {
        "cheap": [completion("Lyon")],
        "judge": [completion("yes")],
        "strong": [completion("Paris")],
    }
    reply = await verifier_stage()(tiered(make_call), upstream(answers, log))
    assert all(c.route is not None and c.route.alias == "auto" for c in log)
    assert notes(reply)["escalated"] == "word"


async def test_time_spent_on_judged_tiers_is_upstream_time_not_overhead(make_call) -> None:
    log: list[Call] = []
    inner = upstream({"cheap": [completion("Lyon")], "strong": [completion("Paris")]}, log)

    async def slow_cheap(call: Call) -> Reply:
        if call.route is not None and call.route.tier == "small":
            await asyncio.sleep(0.05)
        return await inner(call)

    reply = await stage(NeedsWord("Paris"))(tiered(make_call), slow_cheap)
    assert reply.stats.upstream_first_s >= 0.05  # a lower bound: what the cheap tier took
