from __future__ import annotations

import pytest

from gateway.errors import (
    ContentPolicyRejected,
    ContextWindowExceeded,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    UpstreamRejected,
)
from gateway.targets.classify import classify


def err(message: str, code: str | None = None) -> bytes:
    import orjson

    return orjson.dumps({"error": {"message": message, "type": "x", "code": code, "param": None}})


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "retryable"),
    [
        (
            429,
            err("slow down", "rate_limit_exceeded"),
            {"retry-after": "3"},
            ProviderRateLimited,
            True,
        ),
        (429, err("quota", "insufficient_quota"), {}, ProviderAuthFailed, True),
        (402, err("pay"), {}, ProviderAuthFailed, True),
        (401, err("bad key"), {}, ProviderAuthFailed, True),
        (403, err("forbidden"), {}, ProviderAuthFailed, True),
        (500, err("boom"), {}, ProviderUnavailable, True),
        (503, b"<html>", {}, ProviderUnavailable, True),
        (408, b"", {}, ProviderUnavailable, True),
        (400, err("bad tools", "invalid_value"), {}, UpstreamRejected, False),
        (400, err("too long", "context_length_exceeded"), {}, ContextWindowExceeded, True),
        (400, err("prompt is too long: 250000 tokens"), {}, ContextWindowExceeded, True),
        (400, err("flagged", "content_filter"), {}, ContentPolicyRejected, False),
        (
            400,
            err("You have reached your specified API usage limits."),
            {},
            ProviderAuthFailed,
            True,
        ),
        (422, err("unprocessable"), {}, UpstreamRejected, False),
    ],
)
def test_classification_table(status, body, headers, expected, retryable) -> None:
    got = classify(status, body, headers, "t")
    assert type(got) is expected
    assert got.retryable is retryable


def test_rate_limit_keeps_retry_after_and_client_errors_keep_status() -> None:
    assert classify(429, err("x"), {"retry-after": "3"}, "t").retry_after_s == 3.0
    rejected = classify(400, err("context too long", "context_length_exceeded"), {}, "t")
    assert rejected.status == 400
    assert isinstance(rejected, ContextWindowExceeded)
    assert rejected.code == "context_length_exceeded"
    assert rejected.message == "The prompt does not fit the model's context window."
    assert "context too long" in rejected.detail


LEAKY = (
    "Incorrect API key provided: sk-proj-abc1****************************wxyz. You can find "
    "your API key at https://platform.openai.com/account/api-keys."
)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429, 500, 503])
def test_the_providers_text_is_kept_for_operators_never_shown_to_users(status: int) -> None:
    from gateway.errors import AllTargetsFailed, Attempt
    from gateway.http.errors import error_body

    got = classify(status, err(LEAKY, "invalid_api_key"), {}, "openai-main")
    assert "sk-proj" not in got.message and "sk-proj" in got.detail
    attempt = Attempt("openai-main", got.kind, got.status, got.message, 1.0, detail=got.detail)
    failed = AllTargetsFailed("fast", (attempt,))
    for shown in (error_body(got), error_body(failed)):
        assert b"sk-proj" not in shown and b"api-keys" not in shown
    assert "sk-proj" in failed.detail
