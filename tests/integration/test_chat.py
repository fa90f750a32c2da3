"""The OpenAI SDK against a running gateway: sync, async, streaming, pass-through parameters."""

from __future__ import annotations

import json

import openai
import pytest

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def client(gw, key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key or gw.key, max_retries=0, timeout=10)


def test_sync_completion_with_headers(gateway) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="fast", messages=MESSAGES, max_tokens=16, extra_headers={"x-request-id": "abc-123"}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-request-id"] == "abc-123"
    assert raw.headers["x-tiergate-target"] == "ok"
    assert raw.headers["x-tiergate-attempts"] == "1"
    assert raw.headers["x-tiergate-config-version"] == "itest-1"
    assert raw.headers["x-tiergate-model"] == "sim-fast"
    assert float(raw.headers["x-tiergate-overhead-ms"]) >= 0


def test_request_id_is_generated_when_absent(gateway) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
    assert raw.headers["x-request-id"].startswith("req_")


@pytest.mark.asyncio
async def test_async_client_concurrently(gateway) -> None:
    import asyncio

    aclient = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    results = await asyncio.gather(
        *(aclient.chat.completions.create(model="fast", messages=MESSAGES) for _ in range(20))
    )
    assert all(r.choices[0].message.content for r in results)
    await aclient.close()


def test_deterministic_content(gateway) -> None:
    c = client(gateway)
    one = c.chat.completions.create(model="fast", messages=MESSAGES, seed=1)
    two = c.chat.completions.create(model="fast", messages=MESSAGES, seed=1)
    assert one.choices[0].message.content == two.choices[0].message.content


def test_streaming_with_usage(gateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="fast", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []


def test_streaming_without_usage_hides_the_usage_chunk(gateway) -> None:
    chunks = list(
        client(gateway).chat.completions.create(model="fast", messages=MESSAGES, stream=True)
    )
    assert chunks and all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_tools_pass_through(gateway) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = client(gateway).chat.completions.create(
        model="fast", messages=MESSAGES, tools=tools, tool_choice="auto"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"


def test_json_mode_and_schema(gateway) -> None:
    c = client(gateway)
    out = c.chat.completions.create(
        model="fast", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(out.choices[0].message.content), dict)
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object"}},
    }
    out = c.chat.completions.create(model="fast", messages=MESSAGES, response_format=schema)
    assert isinstance(json.loads(out.choices[0].message.content), dict)


def test_logprobs_n_stop_seed_user_max_completion_tokens(gateway) -> None:
    out = client(gateway).chat.completions.create(
        model="fast",
        messages=MESSAGES,
        logprobs=True,
        top_logprobs=2,
        n=2,
        stop=["\n"],
        seed=7,
        user="u-1",
        max_completion_tokens=5,
    )
    assert len(out.choices) == 2
    assert out.choices[0].logprobs is not None
    assert out.choices[0].logprobs.content[0].top_logprobs
    assert out.usage.completion_tokens <= 10


def test_embeddings(gateway) -> None:
    out = client(gateway).embeddings.create(model="embed", input=["one", "two"])
    assert len(out.data) == 2
    assert len(out.data[0].embedding) > 0


def test_models_lists_the_aliases_this_key_may_use(gateway) -> None:
    everything = {m.id for m in client(gateway).models.list()}
    assert {"fast", "smart", "embed", "claude"} <= everything
    limited = {m.id for m in client(gateway, gateway.limited_key).models.list()}
    assert limited == {"fast"}
