"""When the simulated model calls a tool, so agent loops end as they do with a real model.

Policy: offered tools are called unless ``tool_choice`` is ``none``; but when the last message is
a tool's result and the choice is left to the model (``auto`` or unset), the model answers in
text, as a real model does once it has what it asked for. ``required`` or a named tool still
forces a call.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.sim.bodies import ChatMessage, NamedToolChoice


def calls_a_tool(messages: Sequence[ChatMessage], choice: str | NamedToolChoice | None) -> bool:
    """Whether a request that offers tools gets a tool call (else a text answer)."""
    if choice == "none":
        return False
    answered = bool(messages) and messages[-1].role == "tool"
    return not (answered and choice in (None, "auto"))
