"""The errors a simulated provider returns, described once for both wire formats.

Each error carries what OpenAI would send (status, ``type``, ``code``, ``param``) and what
Anthropic would send (status, ``error.type``), with messages modelled on the real ones, so that
the gateway's classifier (rate limit vs quota vs context window vs content policy) is tested
against realistic bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.sim.config import FaultKind, FaultRule


@dataclass(frozen=True, slots=True)
class ProviderError:
    status: int
    message: str
    openai_type: str
    openai_code: str | None = None
    openai_param: str | None = None
    anthropic_status: int | None = None  # None: same as status
    anthropic_type: str = "api_error"
    anthropic_message: str | None = None  # None: same as message
    retry_after_s: float | None = None


def invalid_request(
    message: str, param: str | None = None, code: str | None = None
) -> ProviderError:
    return ProviderError(
        400, message, "invalid_request_error", code, param, None, "invalid_request_error"
    )


def not_found(method: str, path: str) -> ProviderError:
    return ProviderError(
        404,
        f"Invalid URL ({method} {path})",
        "invalid_request_error",
        anthropic_type="not_found_error",
    )


def unauthorized() -> ProviderError:
    return ProviderError(
        401,
        "Incorrect API key provided.",
        "invalid_request_error",
        "invalid_api_key",
        anthropic_type="authentication_error",
        anthropic_message="invalid x-api-key",
    )


def too_large(limit_bytes: int) -> ProviderError:
    return ProviderError(
        413,
        f"Request body exceeds {limit_bytes} bytes.",
        "invalid_request_error",
        anthropic_type="request_too_large",
    )


def rate_limited(model: str, what: str, limit: int, retry_after_s: float) -> ProviderError:
    """``what`` is "requests" or "tokens": which of RPM or TPM ran out."""
    unit = "RPM" if what == "requests" else "TPM"
    message = (
        f"Rate limit reached for {model} on {what} per min ({unit}): Limit {limit}. "
        f"Please try again in {retry_after_s:.3g}s."
    )
    return ProviderError(
        429,
        message,
        what,
        "rate_limit_exceeded",
        anthropic_type="rate_limit_error",
        retry_after_s=retry_after_s,
    )


def context_exceeded(prompt_tokens: int, window_tokens: int) -> ProviderError:
    message = (
        f"This model's maximum context length is {window_tokens} tokens. However, your "
        f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the "
        "messages."
    )
    return ProviderError(
        400,
        message,
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
        anthropic_type="invalid_request_error",
        anthropic_message=(f"prompt is too long: {prompt_tokens} tokens > {window_tokens} maximum"),
    )


def internal(detail: str) -> ProviderError:
    return ProviderError(500, f"The sim failed: {detail}", "server_error")


def fault_error(rule: FaultRule, prompt_tokens: int) -> ProviderError | None:
    """The error a fault answers with; None for faults that shape the answer instead."""
    kind = rule.fault
    if kind is FaultKind.RATE_LIMIT:
        return ProviderError(
            429,
            "Rate limit reached for requests (simulated).",
            "requests",
            "rate_limit_exceeded",
            anthropic_type="rate_limit_error",
            anthropic_message="Number of requests has exceeded your rate limit (simulated).",
            retry_after_s=rule.retry_after_s,
        )
    if kind is FaultKind.SERVER_ERROR:
        return ProviderError(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            "server_error",
            anthropic_message="Internal server error (simulated)",
        )
    if kind is FaultKind.BAD_GATEWAY:
        return ProviderError(502, "Bad gateway. (simulated)", "server_error")
    if kind is FaultKind.UNAVAILABLE:
        return ProviderError(
            503,
            "The engine is currently overloaded, please try again later. (simulated)",
            "server_error",
            anthropic_type="overloaded_error",
            anthropic_message="Overloaded (simulated)",
        )
    if kind is FaultKind.QUOTA:
        return ProviderError(
            429,
            "You exceeded your current quota, please check your plan and "
            "billing details. (simulated)",
            "insufficient_quota",
            "insufficient_quota",
            anthropic_status=400,
            anthropic_type="invalid_request_error",
            anthropic_message="You have reached your specified API usage "
            "limits. You will regain access on the first of next month. "
            "(simulated)",
        )
    if kind is FaultKind.CONTEXT:
        return context_exceeded(max(prompt_tokens, 8193), 8192)
    if kind is FaultKind.CONTENT_POLICY:
        return ProviderError(
            400,
            "The response was filtered due to the prompt triggering the "
            "content management policy. (simulated)",
            "invalid_request_error",
            "content_filter",
            "prompt",
            anthropic_type="invalid_request_error",
            anthropic_message="Output blocked by content filtering policy (simulated)",
        )
    return None
