"""One tool-calling turn of the OpenAI Agents SDK (which calls the Responses API) against the
gateway and the sim: the model asks for the tool, the SDK runs it and sends the result back,
the model answers in text."""

from __future__ import annotations

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

pytestmark = pytest.mark.integration


def agent_for(client: openai.AsyncOpenAI, calls: list[str]) -> Agent:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "sunny, 21C"

    set_tracing_disabled(True)  # no trace export: there is no OpenAI account behind this
    model = OpenAIResponsesModel(model="fast", openai_client=client)
    return Agent(
        name="weather",
        instructions="Answer weather questions with the tool.",
        tools=[get_weather],
        model=model,
        model_settings=ModelSettings(tool_choice="auto"),
    )


@pytest.mark.asyncio
async def test_agent_tool_turn(gateway) -> None:
    calls: list[str] = []
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=gateway.key, max_retries=0
    ) as client:
        result = await Runner.run(agent_for(client, calls), "What is the weather in Paris?")
    assert len(calls) == 1  # the model asked for the tool once, the SDK ran it
    assert isinstance(result.final_output, str) and result.final_output
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert len(result.raw_responses) == 2
    assert all(r.usage.output_tokens > 0 for r in result.raw_responses)


@pytest.mark.asyncio
async def test_agent_tool_turn_streamed(gateway) -> None:
    calls: list[str] = []
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=gateway.key, max_retries=0
    ) as client:
        result = Runner.run_streamed(agent_for(client, calls), "Weather in Oslo?")
        events = [event async for event in result.stream_events()]
    assert len(calls) == 1
    assert isinstance(result.final_output, str) and result.final_output
    assert any(e.type == "raw_response_event" for e in events)
