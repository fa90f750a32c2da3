"""Anthropic clients in: ``POST /v1/messages`` with the official anthropic SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import anthropic
import pytest

pytestmark = pytest.mark.integration

TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(gateway) -> Iterator[Callable[..., anthropic.Anthropic]]:
    """SDK clients for this test, closed after it (their sockets must not leak)."""
    made: list[anthropic.Anthropic] = []

    def make(key: str | None = None) -> anthropic.Anthropic:
        made.append(
            anthropic.Anthropic(
                base_url=gateway.root, api_key=key or gateway.key, max_retries=0, timeout=10
            )
        )
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_message_json(gateway, client) -> None:
    raw = client().messages.with_raw_response.create(
        model="fast",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-tiergate-target"] == "ok"


def test_same_text_as_chat(gateway, client) -> None:
    import openai

    chat = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    text = (
        chat.chat.completions.create(
            model="fast", max_tokens=64, messages=[{"role": "user", "content": "Same question"}]
        )
        .choices[0]
        .message.content
    )
    message = client().messages.create(
        model="fast", max_tokens=64, messages=[{"role": "user", "content": "Same question"}]
    )
    assert message.content[0].text == text


def test_message_stream(gateway, client) -> None:
    with client().messages.stream(
        model="fast", max_tokens=64, messages=[{"role": "user", "content": "Count to five"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_raw_stream_event_order(gateway, client) -> None:
    events = list(
        client().messages.create(
            model="fast",
            max_tokens=64,
            stream=True,
            messages=[{"role": "user", "content": "Hello"}],
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "content_block_delta" in kinds and "content_block_stop" in kinds


def test_tool_use_round_trip(gateway, client) -> None:
    c = client()
    first = c.messages.create(
        model="fast",
        max_tokens=64,
        tools=[TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict)
    second = c.messages.create(
        model="fast",
        max_tokens=64,
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"


def test_tool_use_streamed(gateway, client) -> None:
    with client().messages.stream(
        model="fast",
        max_tokens=64,
        tools=[TOOL],
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    use = final.content[0]
    assert use.type == "tool_use" and use.name == "get_weather" and "city" in use.input


def test_key_in_x_api_key_and_bearer(gateway, client) -> None:
    # The SDK sends x-api-key; a bearer token works too (auth_token).
    with anthropic.Anthropic(
        base_url=gateway.root, auth_token=gateway.key, max_retries=0
    ) as bearer:
        message = bearer.messages.create(
            model="fast", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content


def test_errors_in_anthropic_shape(gateway, client) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client("tg-wrong").messages.create(
            model="fast", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert auth.value.body["type"] == "error"
    assert auth.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client().messages.create(
            model="no-such-alias", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client().messages.create(
            model="fast", max_tokens=0, messages=[{"role": "user", "content": "hi"}]
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):  # an alias the key may not use is not shown
        client(gateway.limited_key).messages.create(
            model="smart", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )


def test_through_fallback(gateway, client) -> None:
    raw = client().messages.with_raw_response.create(
        model="after-500", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-target"] == "ok"
    assert raw.parse().content[0].text


def test_stream_cut_raises_in_the_sdk(gateway, client) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client().messages.stream(
            model="cut-stream", max_tokens=64, messages=[{"role": "user", "content": "Tell me"}]
        ) as stream,
    ):
        "".join(stream.text_stream)
    assert info.value.body["error"]["type"] == "api_error"
