"""The sim's OpenAI surface, exercised with the official openai SDK over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from gateway.sim import ModelBehaviour, SimConfig, SimServer, start_sim
from gateway.sim.control import http_request

CONFIG = SimConfig(
    models={
        "sim-fast": ModelBehaviour(completion_tokens=12, logprob=-0.5),
        "sim-fixed": ModelBehaviour(reply="The answer is forty-two."),
        "sim-echo": ModelBehaviour(echo=True),
        "default": ModelBehaviour(completion_tokens=8),
    }
)
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello in one short sentence."}
]


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


@pytest.mark.asyncio
async def test_json_chat_has_the_openai_shape(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="sim-fast", messages=HELLO)
    assert reply.object == "chat.completion"
    assert reply.model == "sim-fast"
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 12


@pytest.mark.asyncio
async def test_answers_are_deterministic_per_prompt(client: openai.AsyncOpenAI) -> None:
    other: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Something else entirely."}
    ]
    first = await client.chat.completions.create(model="sim-fast", messages=HELLO)
    again = await client.chat.completions.create(model="sim-fast", messages=HELLO)
    changed = await client.chat.completions.create(model="sim-fast", messages=other)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != changed.choices[0].message.content
    assert first.id != again.id


@pytest.mark.asyncio
async def test_fixed_reply_and_echo(client: openai.AsyncOpenAI) -> None:
    fixed = await client.chat.completions.create(model="sim-fixed", messages=HELLO)
    assert fixed.choices[0].message.content == "The answer is forty-two."
    assert fixed.usage is not None and fixed.usage.completion_tokens == 4  # one token per word
    echo = await client.chat.completions.create(model="sim-echo", messages=HELLO)
    assert echo.choices[0].message.content == HELLO[0]["content"]


@pytest.mark.asyncio
async def test_stream_matches_json_and_reports_usage(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="sim-fast", messages=HELLO)
    stream = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


@pytest.mark.asyncio
async def test_stream_without_include_usage_has_no_usage_chunk(
    client: openai.AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


@pytest.mark.asyncio
async def test_logprobs_and_n(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        n=3,
        logprobs=True,
        top_logprobs=2,
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert reply.usage is not None and reply.usage.completion_tokens == 3 * 12
    for choice in reply.choices:
        assert choice.logprobs is not None and choice.logprobs.content is not None
        entries = choice.logprobs.content
        assert "".join(e.token for e in entries) == choice.message.content
        for entry in entries:
            assert entry.logprob == -0.5
            assert entry.bytes == list(entry.token.encode())
            assert len(entry.top_logprobs) == 2
            assert entry.top_logprobs[0].token == entry.token


@pytest.mark.asyncio
async def test_streamed_logprobs_and_n(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        n=2,
        logprobs=True,
        top_logprobs=1,
        stream=True,
    )
    texts = {0: "", 1: ""}
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                texts[choice.index] += choice.delta.content
                assert choice.logprobs is not None and choice.logprobs.content
    assert texts[0] and texts[1]


@pytest.mark.asyncio
async def test_max_tokens_caps_with_length(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        max_tokens=4,
        stop=["\n"],
        seed=7,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 4
    newer = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        max_completion_tokens=3,
    )
    assert newer.usage is not None and newer.usage.completion_tokens == 3


@pytest.mark.asyncio
async def test_completion_tokens_header_override(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        extra_headers={"x-sim-completion-tokens": "40"},
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 40


WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
CLOCK_TOOL: ChatCompletionToolParam = {"type": "function", "function": {"name": "get_time"}}


@pytest.mark.asyncio
async def test_tools_answer_with_a_call_to_the_first_tool(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert set(json.loads(calls[0].function.arguments)) == {"city", "days"}


@pytest.mark.asyncio
async def test_tool_choice_none_and_named(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert plain.choices[0].finish_reason == "stop"
    assert plain.choices[0].message.tool_calls is None
    named = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = named.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    assert calls[0].function.name == "get_time"
    assert calls[0].function.arguments == "{}"


@pytest.mark.asyncio
async def test_streamed_tool_call(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        tools=[CLOCK_TOOL],
        stream=True,
    )
    name, arguments, finish = "", "", None
    async for chunk in stream:
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or []:
            assert delta.index == 0
            name += (delta.function.name or "") if delta.function else ""
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = choice.finish_reason or finish
    assert (name, arguments, finish) == ("get_time", "{}", "tool_calls")


@pytest.mark.asyncio
async def test_json_object_mode(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        response_format={"type": "json_object"},
    )
    content = reply.choices[0].message.content
    assert content is not None
    value = json.loads(content)
    assert isinstance(value, dict) and isinstance(value["answer"], str)


@pytest.mark.asyncio
async def test_json_schema_mode_fills_the_schema(client: openai.AsyncOpenAI) -> None:
    schema: dict[str, object] = {
        "type": "object",
        "properties": {
            "label": {"enum": ["spam", "ham"]},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
        },
        "required": ["label", "score", "tags"],
        "$defs": {"tag": {"type": "string"}},
    }
    stream = await client.chat.completions.create(
        model="sim-fast",
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": True},
        },
        stream=True,
    )
    content = "".join([c.choices[0].delta.content or "" async for c in stream])
    value = json.loads(content)
    assert value["label"] == "spam"
    assert value["score"] == 0
    assert isinstance(value["tags"], list) and isinstance(value["tags"][0], str)


@pytest.mark.asyncio
async def test_embeddings_are_deterministic_unit_vectors(client: openai.AsyncOpenAI) -> None:
    # The SDK asks for base64 by default; the raw float form is checked below.
    result = await client.embeddings.create(model="sim-embed", input=["alpha", "beta", "alpha"])
    vectors = [item.embedding for item in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
    assert result.usage.prompt_tokens == 3
    small = await client.embeddings.create(
        model="sim-embed", input="alpha", dimensions=16, encoding_format="float"
    )
    assert len(small.data[0].embedding) == 16


@pytest.mark.asyncio
async def test_models_and_health(sim: SimServer, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert {m.id for m in models.data} == {"sim-fast", "sim-fixed", "sim-echo"}
    health = await http_request(sim.base_url, "GET", "/health")
    assert health.status == 200 and health.json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_unknown_models_use_the_default_entry(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="gpt-anything", messages=HELLO)
    assert reply.model == "gpt-anything"
    assert reply.usage is not None and reply.usage.completion_tokens == 8


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (b"{not json", None, "could not parse the JSON body"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', None, "provide a model"),
        (b'{"model": "sim-fast"}', "messages", "Missing required parameter: 'messages'"),
        (b'{"model": "sim-fast", "messages": [], "n": 0}', "messages", "Invalid value"),
    ],
)
async def test_bad_requests_get_openai_400s(
    sim: SimServer, body: bytes, param: str | None, message: str
) -> None:
    response = await http_request(sim.base_url, "POST", "/v1/chat/completions", body)
    assert response.status == 400
    payload = response.json()
    assert isinstance(payload, dict)
    error = payload["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


@pytest.mark.asyncio
async def test_unknown_path_is_404_in_openai_shape(sim: SimServer) -> None:
    response = await http_request(sim.base_url, "POST", "/v1/nope", b"{}")
    assert response.status == 404
    payload = response.json()
    assert isinstance(payload, dict) and "Invalid URL" in payload["error"]["message"]


@pytest.mark.asyncio
async def test_api_key_required_when_configured() -> None:
    server = await start_sim("127.0.0.1", 0, SimConfig(require_api_key=True, api_keys=("k1",)))
    try:
        async with openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0
        ) as bad:
            with pytest.raises(openai.AuthenticationError) as caught:
                await bad.chat.completions.create(model="m", messages=HELLO)
            assert caught.value.code == "invalid_api_key"
        async with openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1", api_key="k1", max_retries=0
        ) as good:
            reply = await good.chat.completions.create(model="m", messages=HELLO)
            assert reply.choices[0].message.content
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_repeated_streams_get_fresh_ids(client: openai.AsyncOpenAI) -> None:
    runs = []
    for _ in range(2):
        stream = await client.chat.completions.create(
            model="sim-fast",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert len({chunk.id for chunk in chunks}) == 1
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        runs.append((chunks[0].id, text))
    assert runs[0][0] != runs[1][0]
    assert runs[0][1] == runs[1][1]
