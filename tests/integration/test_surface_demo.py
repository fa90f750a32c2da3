"""Every client API against the demo rules (what ``make run`` serves: routing_rules/default.yaml
and the demo simulator config), on free ports: the openai SDK's chat, stream, embeddings,
models, legacy completions and Responses (JSON and stream), the anthropic SDK's messages (JSON
and stream), and one OpenAI Agents SDK tool turn, all with the public demo key."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import anthropic
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from gateway.demo import DEMO_KEY
from tests.integration.conftest import ROOT, free_port, stop, wait_for_port

pytestmark = pytest.mark.integration


@pytest.fixture
def demo_sim() -> Iterator[int]:
    port = free_port()
    config = str(ROOT / "routing_rules" / "sim.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", "--port", str(port), "--config", config],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)


@pytest.fixture
def demo(demo_sim: int, spawn_gateway) -> str:
    text = (ROOT / "routing_rules" / "default.yaml").read_text()
    # Written elsewhere, the rules' relative artifact paths must point back into the repo.
    text = text.replace("artifact: artifacts/", f"artifact: {ROOT}/routing_rules/artifacts/")
    gw = spawn_gateway(text.replace("127.0.0.1:9100", f"127.0.0.1:{demo_sim}"))
    return f"http://127.0.0.1:{gw.port}"


@pytest.mark.asyncio
async def test_every_client_api_on_the_demo_rules(demo: str) -> None:
    hello = [{"role": "user", "content": "Hello!"}]
    with openai.OpenAI(base_url=demo + "/v1", api_key=DEMO_KEY, max_retries=0) as c:
        assert c.chat.completions.create(model="fast", messages=hello).choices[0].message.content
        chunks = list(c.chat.completions.create(model="smart", messages=hello, stream=True))
        assert "".join(x.choices[0].delta.content or "" for x in chunks if x.choices)
        assert c.embeddings.create(model="embed", input="hello").data[0].embedding
        assert "fast" in [m.id for m in c.models.list()]
        assert c.models.retrieve("fast").id == "fast"
        assert c.completions.create(model="fast", prompt="Hello").choices[0].text
        response = c.responses.create(model="fast", input="Hello!")
        assert response.output_text and c.responses.retrieve(response.id).id == response.id
        events = list(c.responses.create(model="fast", input="Hello!", stream=True))
        assert events[-1].type == "response.completed" and events[-1].response.output_text
    with anthropic.Anthropic(base_url=demo, api_key=DEMO_KEY, max_retries=0) as a:
        assert a.messages.create(model="fast", max_tokens=64, messages=hello).content[0].text
        with a.messages.stream(model="fast", max_tokens=64, messages=hello) as stream:
            assert "".join(stream.text_stream)

    calls: list[str] = []

    @function_tool
    def lookup(topic: str) -> str:
        """Look a topic up."""
        calls.append(topic)
        return "found it"

    set_tracing_disabled(True)
    async with openai.AsyncOpenAI(base_url=demo + "/v1", api_key=DEMO_KEY, max_retries=0) as ac:
        agent = Agent(
            name="demo",
            instructions="Use the tool.",
            tools=[lookup],
            model=OpenAIResponsesModel(model="fast", openai_client=ac),
        )
        result = await Runner.run(agent, "Look up the gateway.")
    assert calls and isinstance(result.final_output, str) and result.final_output
