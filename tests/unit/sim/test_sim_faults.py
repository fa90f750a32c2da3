"""Injected faults, rate limits and the runtime fault API, seen through the official SDKs."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest
import pytest_asyncio
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from gateway.sim import FaultKind, FaultRule, ModelBehaviour, SimConfig, SimServer, start_sim
from gateway.sim.control import SimControl, SimControlError, http_request

CONFIG = SimConfig(
    models={
        "sim-a": ModelBehaviour(completion_tokens=6),
        "sim-b": ModelBehaviour(completion_tokens=6),
        "sim-tpm": ModelBehaviour(completion_tokens=10, tpm_limit=60),
        "sim-rpm": ModelBehaviour(rpm_limit=2),
        "sim-down": ModelBehaviour(faults=(FaultRule(fault=FaultKind.UNAVAILABLE),)),
        "sim-small": ModelBehaviour(context_window_tokens=20),
        "default": ModelBehaviour(completion_tokens=6),
    }
)
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
CLAUDE_HELLO: list[MessageParam] = [{"role": "user", "content": "Say hello."}]


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim("127.0.0.1", 0, CONFIG)
    yield server
    await server.close()


@pytest_asyncio.fixture
async def client(sim: SimServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{sim.base_url}/v1", api_key="test", max_retries=0, timeout=5
    ) as c:
        yield c


async def ask(client: openai.AsyncOpenAI, model: str = "sim-a", **headers: str) -> str:
    reply = await client.chat.completions.create(
        model=model,
        messages=HELLO,
        extra_headers={k.replace("_", "-"): v for k, v in headers.items()},
    )
    return reply.choices[0].message.content or ""


@pytest.mark.asyncio
async def test_429_with_retry_after(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client, x_sim_fault="429", x_sim_retry_after="3")
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["x-sim-fault"] == "429"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(client: openai.AsyncOpenAI, status: int) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await ask(client, x_sim_fault=str(status))
    assert caught.value.status_code == status
    assert caught.value.type == "server_error"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ("quota", openai.RateLimitError, "insufficient_quota"),
        ("context", openai.BadRequestError, "context_length_exceeded"),
        ("content-policy", openai.BadRequestError, "content_filter"),
    ],
)
async def test_classified_errors(
    client: openai.AsyncOpenAI, fault: str, error: type[openai.APIStatusError], code: str
) -> None:
    with pytest.raises(error) as caught:
        await ask(client, x_sim_fault=fault)
    assert caught.value.code == code


@pytest.mark.asyncio
async def test_anthropic_paths_use_anthropic_error_shapes(sim: SimServer) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=sim.base_url, api_key="t", max_retries=0, timeout=5
    ) as client:
        for fault, status, kind in [
            ("quota", 400, "invalid_request_error"),
            ("429", 429, "rate_limit_error"),
            ("503", 503, "overloaded_error"),
        ]:
            with pytest.raises(anthropic.APIStatusError) as caught:
                await client.messages.create(
                    model="sim-a",
                    max_tokens=5,
                    messages=CLAUDE_HELLO,
                    extra_headers={"x-sim-fault": fault},
                )
            assert caught.value.status_code == status
            body = caught.value.body
            assert isinstance(body, dict)
            assert body["type"] == "error" and body["error"]["type"] == kind


@pytest.mark.asyncio
async def test_hang_until_the_client_gives_up(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model="sim-a",
            messages=HELLO,
            extra_headers={"x-sim-fault": "hang"},
            timeout=0.2,
        )
    assert await ask(client)  # the sim still serves everyone else


@pytest.mark.asyncio
async def test_disconnect_without_a_response(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        await ask(client, x_sim_fault="disconnect")


@pytest.mark.asyncio
async def test_disconnect_mid_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-a",
        messages=HELLO,
        stream=True,
        extra_headers={"x-sim-fault": "disconnect", "x-sim-after-chunks": "3"},
    )
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert len([piece for piece in received if piece]) == 3


@pytest.mark.asyncio
async def test_malformed_json_and_sse(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(json.JSONDecodeError):
        await ask(client, x_sim_fault="malformed")
    stream = await client.chat.completions.create(
        model="sim-a",
        messages=HELLO,
        stream=True,
        extra_headers={"x-sim-fault": "malformed"},
    )
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass


@pytest.mark.asyncio
async def test_slow_first_token(client: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="sim-a",
        messages=HELLO,
        stream=True,
        extra_headers={"x-sim-fault": "slow-first-token", "x-sim-ttft-ms": "150"},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    assert time.monotonic() - started >= 0.15


@pytest.mark.asyncio
async def test_fault_rate_zero_never_fires_and_bad_header_is_400(
    client: openai.AsyncOpenAI,
) -> None:
    assert await ask(client, x_sim_fault="503", x_sim_fault_rate="0")
    with pytest.raises(openai.BadRequestError) as caught:
        await ask(client, x_sim_fault="teapot")
    assert "x-sim-fault" in caught.value.message


@pytest.mark.asyncio
async def test_configured_fault_and_context_window(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as down:
        await ask(client, model="sim-down")
    assert down.value.status_code == 503
    long_prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="sim-small", messages=long_prompt)
    assert caught.value.code == "context_length_exceeded"


@pytest.mark.asyncio
async def test_tpm_limit_headers_then_429(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="sim-tpm",
        messages=HELLO,
    )
    used = raw.parse().usage
    assert used is not None
    assert raw.headers["x-ratelimit-limit-tokens"] == "60"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 60 - used.total_tokens
    assert raw.headers["x-ratelimit-reset-tokens"].endswith("s")
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(5):
            await ask(client, model="sim-tpm")
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "tokens"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "60"


@pytest.mark.asyncio
async def test_rpm_limit(client: openai.AsyncOpenAI) -> None:
    await ask(client, model="sim-rpm")
    await ask(client, model="sim-rpm")
    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client, model="sim-rpm")
    assert caught.value.type == "requests"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.asyncio
async def test_runtime_fault_with_count_then_clear(
    sim: SimServer, client: openai.AsyncOpenAI
) -> None:
    control = SimControl(sim.base_url)
    rule = await control.add_fault("503", model="sim-a", count=2)
    assert rule["remaining"] == 2
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await ask(client, model="sim-a")
    assert await ask(client, model="sim-a")  # count used up: the rule is gone
    assert await control.faults() == []
    await control.add_fault("500", model="sim-*")
    with pytest.raises(openai.InternalServerError):
        await ask(client, model="sim-b")
    assert await ask(client, model="other")
    assert await control.clear_faults(model="sim-*") == 1
    assert await ask(client, model="sim-b")


@pytest.mark.asyncio
async def test_runtime_fault_rate_and_stats(sim: SimServer, client: openai.AsyncOpenAI) -> None:
    control = SimControl(sim.base_url)
    await control.reset_stats()
    await control.add_fault(FaultKind.RATE_LIMIT, rate=0.5, retry_after_s=0)
    failures = 0
    for _ in range(40):
        try:
            await ask(client, model="sim-b")
        except openai.RateLimitError:
            failures += 1
    assert 5 < failures < 35  # seeded dice: both outcomes happen
    listed = await control.faults()
    assert listed[0]["fired"] == failures and listed[0]["model"] == "*"
    stats = await control.stats()
    assert stats["by_model"] == {"sim-b": 40}
    assert stats["by_path"] == {"/v1/chat/completions": 40}
    assert stats["faults"] == {"429": failures}
    assert await control.clear_faults() == 1


@pytest.mark.asyncio
async def test_runtime_fault_api_validates(sim: SimServer) -> None:
    control = SimControl(sim.base_url)
    with pytest.raises(SimControlError):
        await control.add_fault("teapot")
    with pytest.raises(SimControlError):
        await control.add_fault("500", rate=2.0)
    bad = await http_request(sim.base_url, "POST", "/_sim/faults", b'{"fault":"500","x":1}')
    assert bad.status == 400
