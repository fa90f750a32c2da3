"""When the simulated model calls a tool (gateway.sim.tool_turns)."""

from __future__ import annotations

from gateway.sim.bodies import ChatMessage, NamedToolChoice
from gateway.sim.tool_turns import calls_a_tool

ASK = [ChatMessage(role="user", content="weather?")]
ANSWERED = [*ASK, ChatMessage(role="assistant"), ChatMessage(role="tool", content="sunny")]


def test_offered_tools_are_called() -> None:
    assert calls_a_tool(ASK, None)
    assert calls_a_tool(ASK, "auto")
    assert not calls_a_tool(ASK, "none")


def test_after_a_tool_result_the_model_answers_unless_forced() -> None:
    assert not calls_a_tool(ANSWERED, None)
    assert not calls_a_tool(ANSWERED, "auto")
    assert calls_a_tool(ANSWERED, "required")
    named = NamedToolChoice.model_validate({"type": "function", "function": {"name": "w"}})
    assert calls_a_tool(ANSWERED, named)
