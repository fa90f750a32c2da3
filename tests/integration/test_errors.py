"""Bad input: every error in OpenAI's error shape with the right status, never a 500."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration


def post(
    gw,
    body: bytes | None = None,
    *,
    json=None,
    key: str | None = "default",
    path="/chat/completions",
    headers=None,
):
    h = {"content-type": "application/json"}
    if key == "default":
        h["authorization"] = f"Bearer {gw.key}"
    elif key is not None:
        h["authorization"] = key
    h.update(headers or {})
    return httpx.post(f"{gw.base_url}{path}", content=body, json=json, headers=h, timeout=10)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


MSG = [{"role": "user", "content": "hi"}]


def test_malformed_json(gateway) -> None:
    assert_openai_error(post(gateway, b'{"model": "fast", "messages": ['), 400, "invalid_request")


def test_body_not_an_object(gateway) -> None:
    assert_openai_error(post(gateway, b"[1,2]"), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG}, "model"),
        ({"model": "fast"}, "messages"),
        ({"model": "fast", "messages": []}, "messages"),
        ({"model": "fast", "messages": "hi"}, "messages"),
        ({"model": "fast", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "fast", "messages": MSG, "max_tokens": "many"}, "max_tokens"),
        ({"model": "fast", "messages": MSG, "temperature": 7}, "temperature"),
        ({"model": "fast", "messages": MSG, "stream": "yes please"}, "stream"),
    ],
)
def test_wrong_types_and_missing_fields_name_the_field(gateway, body, param) -> None:
    error = assert_openai_error(post(gateway, json=body), 400)
    assert error["param"] == param


def test_oversized_body_is_413(gateway) -> None:
    huge = {"model": "fast", "messages": [{"role": "user", "content": "x" * 100_000}]}
    assert_openai_error(post(gateway, json=huge), 413)


def test_unknown_model_is_404(gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai.OpenAI(
            base_url=gateway.base_url, api_key=gateway.key, max_retries=0
        ).chat.completions.create(model="gpt-17", messages=MSG)
    assert info.value.code == "model_not_found"


def test_alias_not_allowed_for_key_is_404(gateway) -> None:
    response = post(
        gateway, json={"model": "smart", "messages": MSG}, key=f"Bearer {gateway.limited_key}"
    )
    assert_openai_error(response, 404, "model_not_found")


@pytest.mark.parametrize("key", [None, "Bearer wrong-key", "Basic abc", "Bearer"])
def test_bad_or_missing_key_is_401(gateway, key) -> None:
    assert_openai_error(
        post(gateway, json={"model": "fast", "messages": MSG}, key=key), 401, "invalid_api_key"
    )


def test_bad_key_with_sdk(gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.base_url, api_key="nope", max_retries=0).models.list()


def test_unknown_route_is_json_404(gateway) -> None:
    response = httpx.get(f"{gateway.root}/v1/nothing-here", timeout=5)
    assert_openai_error(response, 404, "unknown_url")


def test_wrong_method_is_405(gateway) -> None:
    response = httpx.get(f"{gateway.base_url}/chat/completions", timeout=5)
    assert_openai_error(response, 405)


def test_embeddings_bad_input(gateway) -> None:
    error = assert_openai_error(
        post(gateway, json={"model": "embed", "input": 5}, path="/embeddings"), 400
    )
    assert error["param"].startswith("input")


def test_nothing_was_a_500(gateway) -> None:
    assert not any('"status":500' in line for line in gateway.log_lines())
