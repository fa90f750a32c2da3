"""Upstream error responses classified by meaning, not by status alone.

One table: what an upstream answer means for the request and the target.

=================================  =======================  ======================================
upstream says                      gateway error            effect
=================================  =======================  ======================================
429 (rate limit, Retry-After)      ProviderRateLimited      throttle the target until Retry-After;
                                                            next target
429 insufficient_quota, 402,       ProviderAuthFailed       eject the target for minutes (it will
"usage limits" (Anthropic)                                  not heal in seconds); next target
401, 403                           ProviderAuthFailed       same: our credentials, not the client's
408, 5xx                           ProviderUnavailable      counts against the breaker; next target
400 context length exceeded        ContextWindowExceeded    only targets with a larger window
400 content filter / policy        ContentPolicyRejected    returned, or next target (policy)
other 4xx (400, 404, 413, 422)     UpstreamRejected         back to the client unchanged
=================================  =======================  ======================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import (
    ContentPolicyRejected,
    ContextWindowExceeded,
    GatewayError,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    UpstreamRejected,
)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from LLM providers; treated as absent


def upstream_message(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, code, param) from an OpenAI- or Anthropic-shaped error body, if any."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace") or "no message", None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        msg = err.get("message")
        code = err.get("code") or err.get("type")
        param = err.get("param")
        return (
            str(msg) if msg else "no message",
            str(code) if code else None,
            str(param) if isinstance(param, str) else None,
        )
    if isinstance(err, str):
        return err, None, None
    return "no message", None, None


QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTEXT_WORDS = (
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
)
POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})
POLICY_WORDS = ("content management policy", "content policy", "content filter")
QUOTA_WORDS = ("usage limit", "quota", "credit balance")


CODE_SHAPE = re.compile(r"[a-z0-9_.\-]{1,64}")


def classify(status: int, body: bytes, headers: Mapping[str, str], target: str) -> GatewayError:
    """The client sees our own message; the provider's text goes to ``detail`` (operators only):
    a provider's error can carry its view of our credentials (a masked key, an account id)."""
    message, code, param = upstream_message(body)
    text = f"target '{target}' answered {status}: {message}"
    lowered = message.lower()
    quota = code in QUOTA_CODES or (
        status in (400, 402, 429) and any(w in lowered for w in QUOTA_WORDS)
    )
    if status == 429 and not quota:
        return ProviderRateLimited(
            f"target '{target}' is rate limited by its provider (429).",
            retry_after_s=retry_after_s(headers),
            detail=text,
        )
    if status in (401, 402, 403) or quota:
        return ProviderAuthFailed(
            f"target '{target}' refused the gateway's provider credentials or quota ({status}).",
            detail=text,
        )
    if status == 408 or status >= 500:
        return ProviderUnavailable(
            f"target '{target}' is unavailable ({status}).",
            retry_after_s=retry_after_s(headers),
            detail=text,
        )
    if code in CONTEXT_CODES or any(w in lowered for w in CONTEXT_WORDS):
        return ContextWindowExceeded(
            "The prompt does not fit the model's context window.",
            status=status,
            param=param,
            detail=text,
        )
    if code in POLICY_CODES or any(w in lowered for w in POLICY_WORDS):
        return ContentPolicyRejected(
            "The provider's content filter refused the request.",
            status=status,
            param=param,
            detail=text,
        )
    # The request itself was refused: the client sees the upstream's status, its error code
    # (when it looks like one) and the parameter, in our own words.
    safe_code = code if code is not None and CODE_SHAPE.fullmatch(code) else None
    where = f" (parameter '{param[:64]}')" if param else ""
    return UpstreamRejected(
        f"The provider rejected the request ({status}{', ' + safe_code if safe_code else ''})"
        f"{where}.",
        status=status,
        code=safe_code,
        param=param[:64] if param else None,
        detail=text,
    )
