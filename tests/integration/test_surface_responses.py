"""The Responses API with the official openai SDK: JSON, streaming, tools, structured output,
stored responses and ``previous_response_id``, through the same pipeline as chat."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import openai
import pytest

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
def client(gateway) -> Iterator[Callable[..., openai.OpenAI]]:
    """SDK clients for this test, closed after it (their sockets must not leak)."""
    made: list[openai.OpenAI] = []

    def make(key: str | None = None) -> openai.OpenAI:
        made.append(
            openai.OpenAI(
                base_url=gateway.base_url, api_key=key or gateway.key, max_retries=0, timeout=10
            )
        )
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_create_text(gateway, client) -> None:
    raw = client().responses.with_raw_response.create(
        model="fast", input="What is the capital of France?", instructions="Be brief."
    )
    response = raw.parse()
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text
    assert response.output[0].type == "message"
    assert response.instructions == "Be brief."
    assert response.usage is not None
    assert response.usage.output_tokens > 0 and response.usage.input_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert raw.headers["x-tiergate-target"] == "ok"


def test_same_answer_as_chat(gateway, client) -> None:
    c = client()
    response = c.responses.create(model="fast", input="Same question", store=False)
    chat = c.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "Same question"}]
    )
    assert response.output_text == chat.choices[0].message.content


def test_stream_events(gateway, client) -> None:
    events = list(client().responses.create(model="fast", input="Count to five", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert kind in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert text and done.output_text == text
    assert done.usage is not None and done.usage.output_tokens > 0


def test_stream_helper_final_response(gateway, client) -> None:
    with client().responses.stream(model="fast", input="Hello there") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.status == "completed" and final.output_text


def test_function_call_round_trip(gateway, client) -> None:
    c = client()
    first = c.responses.create(model="fast", input="Weather in Paris?", tools=[WEATHER_TOOL])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    second = c.responses.create(
        model="fast",
        tools=[WEATHER_TOOL],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": calls[0].name,
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"},
        ],
    )
    assert second.output_text and second.output[0].type == "message"


def test_function_call_streamed(gateway, client) -> None:
    events = list(
        client().responses.create(
            model="fast", input="Weather in Rome?", tools=[WEATHER_TOOL], stream=True
        )
    )
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    final = events[-1].response
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments) == {"city": ""} or final.output[0].arguments


def test_structured_output(gateway, client) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    response = client().responses.create(
        model="fast",
        input="Classify: I love it",
        text={"format": {"type": "json_schema", "name": "label", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"label": "positive"}
    assert response.text.format.type == "json_schema"


def test_output_cap_is_incomplete(gateway, client) -> None:
    response = client().responses.create(
        model="fast", input="Tell me a long story", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_retrieve_and_previous_response_id(gateway, client) -> None:
    c = client()
    first = c.responses.create(model="fast", input="My name is Ada.")
    again = c.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text
    follow = c.responses.create(
        model="fast", input="What is my name?", previous_response_id=first.id
    )
    assert follow.previous_response_id == first.id and follow.output_text
    # The follow-up carried the first turn: the sim's answer depends on the whole prompt.
    alone = c.responses.create(model="fast", input="What is my name?", store=False)
    assert follow.usage.input_tokens > alone.usage.input_tokens


def test_stored_responses_are_per_key(gateway, client) -> None:
    mine = client().responses.create(model="fast", input="secret plans")
    other = client(gateway.other_team_key)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="fast", input="more", previous_response_id=mine.id)


def test_store_false_is_not_retrievable(gateway, client) -> None:
    c = client()
    response = c.responses.create(model="fast", input="forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(response.id)


def test_delete(gateway, client) -> None:
    c = client()
    response = c.responses.create(model="fast", input="delete me")
    c.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(response.id)


def test_errors_in_openai_shape(gateway, client) -> None:
    c = client()
    with pytest.raises(openai.AuthenticationError):
        client("tg-wrong").responses.create(model="fast", input="hi")
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="no-such-alias", input="hi")
    with pytest.raises(openai.BadRequestError) as info:
        c.responses.create(model="fast", input="hi", tools=[{"type": "web_search"}])
    assert info.value.param == "tools[0].type"


def test_fallback_and_cache(gateway, client) -> None:
    c = client()
    raw = c.responses.with_raw_response.create(model="after-500", input="fall back please")
    assert raw.headers["x-tiergate-target"] == "ok"
    assert "fails-500" in raw.headers["x-tiergate-failed"]
    hits = [
        c.responses.with_raw_response.create(
            model="fast", input="cache me", temperature=0, store=False
        ).headers["x-tiergate-cache"]
        for _ in range(2)
    ]
    assert hits == ["miss", "hit"]


def test_stream_cut_after_the_first_event_ends_with_an_error_event(gateway, client) -> None:
    events = list(client().responses.create(model="cut-stream", input="Tell me", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "error" and "response.completed" not in kinds
    assert events[-1].code == "stream_interrupted"


def test_request_log_names_the_surface(gateway, client) -> None:
    import time

    client().responses.create(
        model="fast", input="log me", extra_headers={"x-request-id": "surface-log-1"}
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in gateway.log_lines() if "surface-log-1" in x]
        if lines:
            break
        time.sleep(0.1)
    assert lines and lines[0]["surface"] == "responses" and lines[0]["kind"] == "chat"
    assert "log me" not in "".join(gateway.log_lines())


def test_input_items(gateway, client) -> None:
    c = client()
    first = c.responses.create(model="fast", input="Weather in Paris?", tools=[WEATHER_TOOL])
    call = next(i for i in first.output if i.type == "function_call")
    second = c.responses.create(
        model="fast",
        tools=[WEATHER_TOOL],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    items = list(c.responses.input_items.list(second.id, order="asc"))
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    assert items[0].content[0].text == "Weather in Paris?"
    assert items[1].call_id == call.call_id and items[2].output == "sunny"
    newest_first = c.responses.input_items.list(second.id)
    assert newest_first.data[0].type == "function_call_output"
    with pytest.raises(openai.NotFoundError):
        client(gateway.other_team_key).responses.input_items.list(second.id)
