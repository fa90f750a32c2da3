"""Provider for wire formats other than OpenAI's (Anthropic Messages, Gemini, Bedrock, ...).

The one module that imports litellm. litellm costs about 4 s and 180 MB to import and 5-7 ms of
Python per call here, so it is imported only when a ``provider: litellm`` target is configured and
is never used for OpenAI-compatible upstreams. It translates the OpenAI-shaped request to the
provider's format and the answer back; we serialise its objects to the same JSON chunks the
OpenAI path relays.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from gateway.calls import Call, Reply, ReplyStats
from gateway.errors import (
    ContentPolicyRejected,
    ContextWindowExceeded,
    GatewayError,
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    UpstreamRejected,
)
from gateway.requests import ChatRequest
from gateway.rules import Target

# litellm model prefixes whose credentials come from the environment's chain (boto3, ADC).
CREDENTIAL_CHAIN = ("bedrock/", "bedrock_converse/", "sagemaker/", "vertex_ai/")

# What litellm's own translation code raises on a body it cannot map to the provider's format
# (a ``json_schema`` without ``schema``, a tool without ``function``, a content part of an unknown
# type, metadata of the wrong type). litellm wraps these in ``APIConnectionError`` (status 500),
# the class it also uses for a dropped connection: the cause and whether the request was sent
# tell them apart (``_translation_failure``).
TRANSLATION_CAUSES = (KeyError, TypeError, ValueError, IndexError, AttributeError)
TRANSPORT_MODULES = ("httpx", "httpcore", "aiohttp", "anyio", "ssl")


class _Sent:
    """Passed to litellm as ``logger_fn``: litellm calls it with ``pre_api_call`` once the request
    is translated, just before it goes upstream (its HTTP handler's ``pre_call``). Other events
    are ignored: the Anthropic path also logs a ``post_api_call`` before it translates."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False

    def __call__(self, details: Any) -> None:
        if isinstance(details, dict) and details.get("log_event_type") == "pre_api_call":
            self.sent = True


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 16 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _translation_failure(exc: BaseException) -> bool:
    """litellm failed on the request itself before sending it: no transport error anywhere in
    the cause chain, and at the bottom an error of the kind malformed input raises."""
    chain = _causes(exc)
    for cause in chain:
        module = type(cause).__module__.split(".", 1)[0]
        if module in TRANSPORT_MODULES or isinstance(cause, OSError | TimeoutError):
            return False
    root = chain[-1]
    return isinstance(root, TRANSLATION_CAUSES) or type(root) is Exception


def load_litellm() -> Any:
    # No network at import (the cost map ships inside the wheel) and no telemetry.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    return litellm


def _usage(stats: ReplyStats, data: dict[str, Any]) -> None:
    usage = data.get("usage")
    if isinstance(usage, dict):
        stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        stats.completion_tokens = int(usage.get("completion_tokens") or 0)


# Where litellm's messages start quoting the request back (its messages, a tool call's
# arguments): cut there, as prompt text never goes to the logs.
ECHO_MARKERS = ("Received Messages=", "Arguments:")


def _operator_text(exc: BaseException) -> str:
    """litellm's error for the log and the admin API: the exception, its root cause and the
    first line of its message (litellm appends a traceback and sometimes the request)."""
    first = str(exc).split("\n", 1)[0]
    for marker in ECHO_MARKERS:
        first = first.split(marker, 1)[0]
    root = type(_causes(exc)[-1]).__name__
    cause = f" ({root})" if root != type(exc).__name__ else ""
    return f"{type(exc).__name__}{cause}: {first[:300].rstrip()}"


class LiteLLMProvider:
    name = "provider"

    def __init__(
        self,
        target_name: str,
        target: Target,
        api_key: str | None,
        trace_headers: Callable[[], tuple[tuple[str, str], ...]] | None = None,
    ) -> None:
        self._litellm = load_litellm()
        self._trace_headers = trace_headers  # only when tracing is on: traceparent upstream
        self._target_name = target_name
        self._target = target
        # Providers that sign with a credential chain (AWS, Google) get no key at all when none
        # is configured: a placeholder would be sent as a bearer token instead of signing.
        chain = target.model.startswith(CREDENTIAL_CHAIN)
        self._api_key = api_key if api_key or chain else "unused"
        self._timeout_s = target.timeouts.total_s

    def _error(self, exc: Exception, sent: bool = True) -> GatewayError:
        """Our own message for the client; litellm's text (the provider's) in ``detail``.

        ``sent``: whether the request left for the provider. A failure before that, on input
        litellm cannot translate, is the client's (a 400; the target is not at fault and its
        breaker does not count it). After it, the same exception classes mean a bad answer.
        """
        status = getattr(exc, "status_code", None)
        name = self._target_name
        text = f"target '{name}': {_operator_text(exc)}"
        exceptions = self._litellm.exceptions
        if status in (None, 500) and _translation_failure(exc):
            if not sent:
                return UpstreamRejected(
                    f"The request cannot be translated to the format of target '{name}': "
                    "check its tools, response_format, content parts and metadata.",
                    status=400,
                    code="untranslatable_request",
                    detail=text,
                )
            return ProviderBadResponse(
                f"target '{name}' sent an answer that could not be read.", detail=text
            )
        if isinstance(exc, exceptions.ContextWindowExceededError):
            return ContextWindowExceeded(
                "The prompt does not fit the model's context window.", status=400, detail=text
            )
        if isinstance(exc, exceptions.ContentPolicyViolationError):
            return ContentPolicyRejected(
                "The provider's content filter refused the request.", status=400, detail=text
            )
        if isinstance(exc, exceptions.Timeout):
            return ProviderTimeout(f"target '{name}' timed out.", detail=text)
        if isinstance(exc, exceptions.RateLimitError):
            return ProviderRateLimited(
                f"target '{name}' is rate limited by its provider.", detail=text
            )
        auth = f"target '{name}' refused the gateway's provider credentials or quota."
        if isinstance(exc, exceptions.AuthenticationError | exceptions.PermissionDeniedError):
            return ProviderAuthFailed(auth, detail=text)
        if isinstance(exc, exceptions.APIConnectionError) or status is None:
            return ProviderUnavailable(f"target '{name}' is unavailable.", detail=text)
        if status in (401, 402, 403):
            return ProviderAuthFailed(auth, detail=text)
        if status == 408 or status >= 500:
            return ProviderUnavailable(f"target '{name}' is unavailable ({status}).", detail=text)
        return UpstreamRejected(
            f"The provider rejected the request ({status}).", status=status, detail=text
        )

    async def __call__(self, call: Call) -> Reply:
        if not isinstance(call.request, ChatRequest):
            return await self._embed(call)
        params = call.request.model_dump(exclude_unset=True)
        params.pop("model", None)
        stream = bool(params.pop("stream", False))
        params.pop("stream_options", None)
        if self._trace_headers is not None:
            params["extra_headers"] = dict(self._trace_headers())
        started = time.perf_counter()
        stats = ReplyStats(model=self._target.model)
        sent = _Sent()
        try:
            result = await self._litellm.acompletion(
                model=self._target.model,
                api_base=self._target.api_base,
                **({"api_key": self._api_key} if self._api_key else {}),
                stream=stream,
                stream_options={"include_usage": True} if stream else None,
                timeout=self._timeout_s,
                num_retries=0,
                logger_fn=sent,
                **params,
            )
        except Exception as exc:
            raise self._error(exc, sent.sent) from None
        if stream:
            chunks = self._stream(result, stats, call.wants_usage_chunk, started)
        else:
            chunks = self._whole(result, stats, started)
        return Reply(chunks=chunks, stats=stats)

    async def _embed(self, call: Call) -> Reply:
        """Embeddings in any format litellm speaks (Bedrock Titan, Gemini, Cohere, ...),
        answered as an OpenAI embeddings list."""
        params = call.request.model_dump(exclude_unset=True)
        params.pop("model", None)
        params.pop("encoding_format", None)  # floats; base64 is OpenAI's own
        started = time.perf_counter()
        stats = ReplyStats(model=self._target.model)
        try:
            result = await self._litellm.aembedding(
                model=self._target.model,
                api_base=self._target.api_base,
                **({"api_key": self._api_key} if self._api_key else {}),
                timeout=self._timeout_s,
                num_retries=0,
                **params,
            )
        except Exception as exc:
            # litellm's embedding path logs no ``pre_api_call``: whether the request left is
            # unknown, so its errors keep their target-side meaning (the body was validated).
            raise self._error(exc) from None
        stats.upstream_first_s = time.perf_counter() - started
        data = result.model_dump()
        _usage(stats, data)
        if not data.get("data"):
            raise ProviderBadResponse(f"target '{self._target_name}' sent no embeddings")
        return Reply(chunks=_one(orjson.dumps(data)), stats=stats)

    async def _whole(self, result: Any, stats: ReplyStats, started: float) -> AsyncIterator[bytes]:
        stats.upstream_first_s = time.perf_counter() - started
        data = result.model_dump()
        _usage(stats, data)
        choices = data.get("choices") or []
        if not choices:
            raise ProviderBadResponse(f"target '{self._target_name}' sent no choices")
        stats.finish_reason = choices[0].get("finish_reason")
        yield orjson.dumps(data)

    async def _stream(
        self, result: Any, stats: ReplyStats, client_wants_usage: bool, started: float
    ) -> AsyncIterator[bytes]:
        first = True
        try:
            async for chunk in result:
                data = chunk.model_dump(exclude_none=True)
                if first:
                    stats.upstream_first_s = time.perf_counter() - started
                    first = False
                if data.get("usage"):
                    _usage(stats, data)
                choices = data.get("choices") or []
                if choices:
                    reason = choices[0].get("finish_reason")
                    if reason:
                        stats.finish_reason = reason
                elif not client_wants_usage:
                    continue
                if not client_wants_usage:
                    data.pop("usage", None)
                yield orjson.dumps(data)
        except GatewayError:
            raise
        except Exception as exc:
            raise self._error(exc) from None


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body
