"""The one exception tree of the gateway.

Every refusal or failure a stage can produce is a ``GatewayError``. Each class carries the HTTP
status, OpenAI's error ``type`` and ``code``, and whether trying again (another target, a retry)
can help. Only ``gateway.http`` turns these into responses, always in OpenAI's error JSON shape,
with ``Retry-After`` where ``retry_after_s`` is set.

::

    GatewayError                          500 api_error
    ├── ClientError                       400 invalid_request_error   (the caller's fault)
    │   ├── InvalidRequest                400  bad JSON, wrong types, missing fields
    │   ├── BodyTooLarge                  413
    │   ├── BodyTimeout                   408  the body did not arrive within limits.body_timeout_s
    │   ├── UnknownRoute                  404
    │   ├── MethodNotAllowed              405
    │   ├── UnknownModel                  404 model_not_found
    │   ├── IdempotencyConflict           409  the same Idempotency-Key is still running
    │   ├── IdempotencyMismatch           422  the same Idempotency-Key with another body
    │   ├── NoSuchObject                  404  a file or batch this key cannot see (or none)
    │   ├── StateConflict                 409  e.g. cancelling a batch that has finished
    │   └── UpstreamRejected              4xx  the provider refused the request itself (no retry)
    │       ├── ContextWindowExceeded     400  only a target with a larger window is tried
    │       └── ContentPolicyRejected     400  returned, or tried elsewhere (resilience policy)
    ├── RateLimited                       429 rate_limit_exceeded  a key's or team's RPM/TPM
    ├── QuotaExhausted                    429 insufficient_quota   a token or USD budget is spent
    ├── AuthError                         401 invalid_api_key
    ├── Forbidden                         403 model not allowed for this key
    │   └── NotCleared                    403  no target may see the call's data class
    ├── ProviderError                     502  a provider failed; another target may help
    │   ├── ProviderUnavailable           503  connection refused, 5xx
    │   ├── ProviderTimeout               504  connect, first-token or total deadline passed
    │   ├── ProviderRateLimited           429  upstream 429; ``retry_after_s`` from its headers
    │   ├── ProviderAuthFailed            502  upstream 401/403/402: our credentials or quota
    │   ├── ProviderBadResponse           502  malformed JSON / SSE from upstream
    │   ├── StreamInterrupted             502  failure after the first chunk reached the client
    │   ├── TargetEjected                 503  breaker open: refused before any upstream call
    │   └── TargetThrottled               429  at the target's RPM/TPM, or told to wait by a 429
    ├── AllTargetsFailed                  503  every target of the alias failed; keeps each attempt
    └── StateUnavailable                  503  Redis (or another state store) is unreachable
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error the gateway returns to a client."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after_s: float | None = None,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # For operators only (logs, admin API): e.g. the provider's own error text, which may
        # carry its view of our credentials. ``message`` is what the client sees.
        self.detail = message if detail is None else detail
        self.param = param
        self.retry_after_s = retry_after_s
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    @property
    def kind(self) -> str:
        """Short stable name used in logs and metrics (``errors by kind``)."""
        return type(self).__name__


class ClientError(GatewayError):
    status = 400
    type = "invalid_request_error"


class InvalidRequest(ClientError):
    code = "invalid_request"


class BodyTooLarge(ClientError):
    status = 413
    code = "request_too_large"


class BodyTimeout(ClientError):
    """The request body did not arrive in time (``limits.body_timeout_s``)."""

    status = 408
    code = "request_timeout"


class UnknownRoute(ClientError):
    status = 404
    code = "unknown_url"


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class UnknownModel(ClientError):
    status = 404
    code = "model_not_found"


class IdempotencyConflict(ClientError):
    """A request with this Idempotency-Key is still running."""

    status = 409
    code = "idempotency_in_flight"


class IdempotencyMismatch(ClientError):
    """The Idempotency-Key was used before with a different body."""

    status = 422
    code = "idempotency_key_reused"


class NoSuchObject(ClientError):
    """No file or batch by this id that the calling key may see: another key's object looks
    exactly like a missing one (404), so ids cannot be probed."""

    status = 404
    code = None


class StateConflict(ClientError):
    """The object is not in a state that allows this (cancelling a finished batch)."""

    status = 409
    code = None


class UpstreamRejected(ClientError):
    """The provider rejected the request as malformed: returned to the client unchanged."""

    code = "upstream_rejected"


class ContextWindowExceeded(UpstreamRejected):
    """The prompt does not fit this target's window: only a target with a larger one may help."""

    code = "context_length_exceeded"
    retryable = True


class ContentPolicyRejected(UpstreamRejected):
    """The provider's content filter refused. Whether another provider is tried is policy."""

    code = "content_filter"


class RateLimited(GatewayError):
    """A key's or team's own rate limit (not a provider's)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class QuotaExhausted(GatewayError):
    """A token or USD budget is spent; the message names it and when it resets."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class AuthError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"


class NotCleared(Forbidden):
    """No target of the alias is approved for the call's data class: the call fails closed."""

    code = "data_class_not_allowed"


class ProviderError(GatewayError):
    status = 502
    type = "api_error"
    code = "upstream_error"
    retryable = True


class ProviderUnavailable(ProviderError):
    status = 503
    code = "upstream_unavailable"


class ProviderTimeout(ProviderError):
    status = 504
    code = "upstream_timeout"


class ProviderRateLimited(ProviderError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ProviderAuthFailed(ProviderError):
    """Upstream 401/403/402: the gateway's provider credentials or quota; not the client's key."""

    code = "upstream_auth_failed"


class ProviderBadResponse(ProviderError):
    code = "upstream_bad_response"


class StreamInterrupted(ProviderError):
    """A failure after the first chunk reached the client: no failover is possible any more."""

    code = "stream_interrupted"
    retryable = False


class ReservationReached(StreamInterrupted):
    """A stream's output reached what its budget reservation allowed: the gateway cut it."""

    status = 429
    type = "insufficient_quota"
    code = "budget_reservation_reached"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one target, kept in order by the fallback chain."""

    target: str
    error_kind: str
    status: int
    message: str
    elapsed_ms: float
    retry_after_s: float | None = None
    detail: str = ""  # the operator's text (the provider's own message); never sent to clients


class AllTargetsFailed(GatewayError):
    status = 503
    type = "api_error"
    code = "all_targets_failed"

    def __init__(
        self,
        alias: str,
        attempts: tuple[Attempt, ...],
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        tried = "; ".join(f"{a.target}: {a.error_kind} ({a.message})" for a in attempts)
        detail = "; ".join(
            f"{a.target}: {a.error_kind} ({a.detail or a.message})" for a in attempts
        )
        hints = [a.retry_after_s for a in attempts if a.retry_after_s is not None]
        # The soonest any target said it may take traffic again, never less than 1 s.
        retry = max(1.0, min(hints)) if hints else 1.0
        if retry_after_s is not None:
            retry = max(1.0, retry_after_s)
        super().__init__(
            f"all targets for model '{alias}' failed: {tried}",
            retry_after_s=retry,
            status=status,
            detail=f"all targets for model '{alias}' failed: {detail}",
        )
        self.alias = alias
        self.attempts = attempts


class StateUnavailable(GatewayError):
    status = 503
    type = "api_error"
    code = "state_unavailable"
    retryable = False


class TargetEjected(ProviderError):
    """The target's circuit breaker is open: refused at once, without an upstream call.

    ``retry_after_s``: time until the breaker lets a probe through (half-open).
    """

    status = 503
    code = "target_ejected"
    retryable = True


class TargetThrottled(ProviderError):
    """The target is at its configured RPM/TPM or was told to wait by an upstream 429: refused
    without an upstream call, so the fallback chain tries the next target instead.

    ``retry_after_s``: time until the target has capacity again.
    """

    status = 429
    type = "rate_limit_error"
    code = "target_at_capacity"
    retryable = True
