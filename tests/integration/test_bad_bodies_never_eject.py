"""A request the client got wrong is a 4xx for that client and never counts against the target.

The litellm-translated alias (``claude``: OpenAI format in, Anthropic Messages to the sim) used to
turn bodies litellm cannot translate into 503s that counted as target failures: litellm raises its
``APIConnectionError`` (status 500) for a ``KeyError`` in its own request translation, the class it
also uses for a dropped connection. Five such bodies in a row ejected the target, and every good
call after them got ``TargetEjected`` (503) until the breaker's open period ran out. The same is
checked on the OpenAI-compatible direct path (``fast``), where the upstream answers 400 itself.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import Gateway

pytestmark = pytest.mark.integration
HI = [{"role": "user", "content": "hi"}]
ROUNDS = 3  # each round sends every bad body once: well past 5 consecutive failures

# Bodies our schema accepts (loose dicts, as OpenAI's API is) that litellm cannot translate to
# Anthropic's format: it fails before sending anything upstream. The first three are what
# schemathesis generates for the loosely typed fields.
UNTRANSLATABLE: list[dict[str, Any]] = [
    {"tools": [{}]},
    {"response_format": {}},
    {"messages": [{"role": "user", "content": [{}]}]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
    {"response_format": {"type": "json_schema"}},
    {"tools": [{"type": "function"}]},
    {"tools": [{"type": "web_search"}]},
    {"messages": [{"role": "user", "content": [{"type": "zzz"}]}]},
    {"metadata": {"user_id": 5}},
]
# Bodies the upstream itself refuses with a 400 (the sim validates as the real APIs do).
ANTHROPIC_REFUSES: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": []}]},
    {"messages": [{"role": "user", "content": None}]},
]
OPENAI_REFUSES: list[dict[str, Any]] = [
    {"tools": [{"type": "function"}]},
    {"response_format": {"type": "weird"}},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
]


def target_status(gateway: Gateway, name: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{gateway.root}/admin/targets",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        timeout=10,
    ).json()
    (status,) = [t for t in answer["targets"] if t["name"] == name]
    return status


def send_bad_bodies(client: openai.OpenAI, alias: str, bodies: list[dict[str, Any]]) -> None:
    for _ in range(ROUNDS):
        for extra in bodies:
            body = {"messages": HI, **extra}
            messages = body.pop("messages")
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(model=alias, messages=messages, extra_body=body)
            error = caught.value.body
            assert isinstance(error, dict), error
            assert {"message", "type", "param", "code"} <= set(error), error
            assert error["type"] == "invalid_request_error", error


@pytest.mark.parametrize(
    ("alias", "target", "bodies"),
    [
        ("claude", "claude", UNTRANSLATABLE + ANTHROPIC_REFUSES),
        ("fast", "ok", OPENAI_REFUSES),
    ],
)
def test_bad_bodies_are_400s_and_leave_the_target_closed(
    gateway: Gateway, alias: str, target: str, bodies: list[dict[str, Any]]
) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    before = target_status(gateway, target)
    send_bad_bodies(client, alias, bodies)
    after = target_status(gateway, target)
    # The breaker's own counts: no failure verdict in its window, no transition. (``failures``
    # counts every attempt that did not succeed, 4xx included: what the target was sent.)
    assert after["state"] == "closed", after
    assert after["transitions"] == before["transitions"], (before, after)
    assert after["window_failures"] <= before["window_failures"], (before, after)
    good = client.chat.completions.create(model=alias, messages=HI, max_tokens=20)  # type: ignore[arg-type]
    assert good.choices[0].message.content


def test_untranslatable_body_names_the_problem_not_the_provider(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude",
            messages=HI,  # type: ignore[arg-type]
            extra_body={"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "untranslatable_request"
    assert "Traceback" not in error["message"] and "litellm" not in error["message"]


def test_untranslatable_streaming_body_is_a_400_too(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    before = target_status(gateway, "claude")
    for _ in range(6):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="claude",
                messages=HI,  # type: ignore[arg-type]
                stream=True,
                extra_body={"tools": [{}]},
            )
    after = target_status(gateway, "claude")
    assert after["state"] == "closed" and after["transitions"] == before["transitions"]
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        )
    )
    assert any(c.choices and c.choices[0].delta.content for c in chunks)


def test_litellm_errors_quote_no_prompt_text_in_the_log(gateway: Gateway) -> None:
    """litellm's messages quote the request back ("Received Messages=[...]", a tool call's
    arguments); the provider's words go to the log, the prompt must not."""
    secret = "secret-prompt-text-8121"
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0)
    bad_messages: list[list[dict[str, Any]]] = [
        [{"role": "tool", "content": secret}],  # no tool_call_id
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": secret}}
                ],
            },
        ],
    ]
    for messages in bad_messages:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="claude", messages=messages)  # type: ignore[arg-type]
    assert secret not in gateway.log_path.read_text()
