"""The sim's Anthropic Messages surface, exercised with the official anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import pytest
import pytest_asyncio
from anthropic.types import MessageParam, ToolParam

from gateway.sim import ModelBehaviour, SimConfig, SimServer, start_sim
from gateway.sim.control import http_request

CONFIG = SimConfig(
    models={
        "sim-claude": ModelBehaviour(completion_tokens=10),
        "sim-claude-small": ModelBehaviour(tpm_limit=100, rpm_limit=50),
    }
)
HELLO: list[MessageParam] = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim("127.0.0.1", 0, CONFIG)
    yield server
    await server.close()


@pytest_asyncio.fixture
async def client(sim: SimServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=sim.base_url, api_key="test", max_retries=0, timeout=5
    ) as c:
        yield c


@pytest.mark.asyncio
async def test_json_message(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model="sim-claude",
        max_tokens=100,
        system="Be brief.",
        messages=HELLO,
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "sim-claude"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text" and block.text
    assert message.usage.output_tokens == 10
    assert message.usage.input_tokens > 0


@pytest.mark.asyncio
async def test_max_tokens_stops_with_max_tokens(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model="sim-claude",
        max_tokens=3,
        messages=HELLO,
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


@pytest.mark.asyncio
async def test_stream_matches_json(client: anthropic.AsyncAnthropic) -> None:
    whole = await client.messages.create(
        model="sim-claude",
        max_tokens=100,
        messages=HELLO,
    )
    async with client.messages.stream(
        model="sim-claude",
        max_tokens=100,
        messages=HELLO,
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert whole.content[0].type == "text"
    assert text == whole.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens


@pytest.mark.asyncio
async def test_stream_has_the_real_event_sequence(sim: SimServer) -> None:
    body = json.dumps(
        {"model": "sim-claude", "max_tokens": 2, "stream": True, "messages": HELLO}
    ).encode()
    response = await http_request(sim.base_url, "POST", "/v1/messages", body)
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = [
        block.split("\n", 1)[0].removeprefix("event: ")
        for block in response.body.decode().split("\n\n")
        if block
    ]
    assert events == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.asyncio
async def test_tool_use(client: anthropic.AsyncAnthropic) -> None:
    tool: ToolParam = {
        "name": "lookup",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    message = await client.messages.create(
        model="sim-claude",
        max_tokens=100,
        messages=HELLO,
        tools=[tool],
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "lookup"
    assert set(block.input) == {"q"}
    async with client.messages.stream(
        model="sim-claude",
        max_tokens=100,
        messages=HELLO,
        tools=[tool],
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.stop_reason == "tool_use"


@pytest.mark.asyncio
async def test_missing_max_tokens_is_an_anthropic_400(sim: SimServer) -> None:
    body = json.dumps({"model": "sim-claude", "messages": HELLO}).encode()
    response = await http_request(sim.base_url, "POST", "/v1/messages", body)
    assert response.status == 400
    payload = response.json()
    assert isinstance(payload, dict)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in payload["error"]["message"]


@pytest.mark.asyncio
async def test_rate_limit_headers_use_anthropic_names(client: anthropic.AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.create(
        model="sim-claude-small",
        max_tokens=10,
        messages=HELLO,
    )
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "50"
    assert raw.headers["anthropic-ratelimit-tokens-limit"] == "100"
    assert raw.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    with pytest.raises(anthropic.RateLimitError) as caught:
        for _ in range(10):
            await client.messages.create(
                model="sim-claude-small",
                max_tokens=10,
                messages=HELLO,
            )
    assert caught.value.response.headers["retry-after"]
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


@pytest.mark.asyncio
async def test_api_key_header_accepted_when_required() -> None:
    server = await start_sim("127.0.0.1", 0, SimConfig(require_api_key=True))
    try:
        body = json.dumps({"model": "m", "max_tokens": 5, "messages": HELLO}).encode()
        refused = await http_request(server.base_url, "POST", "/v1/messages", body)
        assert refused.status == 401
        payload = refused.json()
        assert isinstance(payload, dict)
        assert payload["error"]["type"] == "authentication_error"
        async with anthropic.AsyncAnthropic(
            base_url=server.base_url, api_key="any-key", max_retries=0
        ) as client:
            message = await client.messages.create(
                model="m",
                max_tokens=5,
                messages=HELLO,
            )
            assert message.content
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_repeated_streams_get_fresh_ids(client: anthropic.AsyncAnthropic) -> None:
    finals = []
    for _ in range(2):
        async with client.messages.stream(
            model="sim-claude", max_tokens=100, messages=HELLO
        ) as stream:
            finals.append(await stream.get_final_message())
    assert finals[0].id != finals[1].id
    assert finals[0].content == finals[1].content
