"""``GET /v1/models/{id}`` and legacy ``POST /v1/completions`` with the official openai SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest

pytestmark = pytest.mark.integration


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


def test_models_retrieve(gateway, client) -> None:
    model = client().models.retrieve("fast")
    assert model.id == "fast" and model.object == "model" and model.owned_by == "tiergate"


def test_models_retrieve_unknown_is_404(gateway, client) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client().models.retrieve("no-such-alias")
    assert info.value.code == "model_not_found"


def test_models_retrieve_hides_aliases_the_key_may_not_use(gateway, client) -> None:
    with pytest.raises(openai.NotFoundError):
        client(gateway.limited_key).models.retrieve("smart")
    assert client(gateway.limited_key).models.retrieve("fast").id == "fast"


def test_models_retrieve_needs_a_key(gateway, client) -> None:
    with pytest.raises(openai.AuthenticationError):
        client("tg-wrong").models.retrieve("fast")


def test_legacy_completion_json(gateway, client) -> None:
    raw = client().completions.with_raw_response.create(
        model="fast", prompt="Say hello", max_tokens=8
    )
    done = raw.parse()
    assert done.object == "text_completion"
    assert done.id.startswith("cmpl-")
    assert done.choices[0].text
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert raw.headers["x-tiergate-target"] == "ok"


def test_legacy_completion_echo(gateway, client) -> None:
    done = client().completions.create(model="fast", prompt="Echo me", echo=True)
    assert done.choices[0].text.startswith("Echo me")


def test_legacy_completion_stream(gateway, client) -> None:
    stream = client().completions.create(
        model="fast", prompt="Count to five", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text
    assert all(c.object == "text_completion" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"


def test_legacy_completion_same_text_as_chat(gateway, client) -> None:
    c = client()
    legacy = c.completions.create(model="fast", prompt="Same question", seed=3)
    chat = c.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "Same question"}], seed=3
    )
    assert legacy.choices[0].text == chat.choices[0].message.content


def test_legacy_completion_errors_in_openai_shape(gateway, client) -> None:
    c = client()
    with pytest.raises(openai.BadRequestError) as info:
        c.completions.create(model="fast", prompt=["one", "two"])
    assert info.value.param == "prompt"
    with pytest.raises(openai.AuthenticationError):
        client("tg-wrong").completions.create(model="fast", prompt="hi")
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="no-such-alias", prompt="hi")


def test_legacy_completion_through_fallback(gateway, client) -> None:
    raw = client().completions.with_raw_response.create(model="after-500", prompt="hi")
    assert raw.headers["x-tiergate-target"] == "ok"
    assert "fails-500" in raw.headers["x-tiergate-failed"]
    assert raw.parse().choices[0].text
