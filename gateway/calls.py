"""The typed values that flow through the pipeline: Call in, Reply out, Notes on the way.

A ``Call`` is frozen: a stage that changes something passes ``replace(call, ...)`` on. A ``Reply``
is a stream of chunks for streaming and non-streaming requests alike: each chunk is the raw JSON
bytes of one OpenAI object (a ``chat.completion.chunk`` when streaming; exactly one
``chat.completion`` or embeddings list otherwise), so the edge relays upstream bytes without
re-encoding them.

Facts that only exist once the stream has flowed (token usage, the time the upstream took) are
written into the reply's ``ReplyStats`` by the provider as it reads; everything a stage decided is
a frozen ``Note``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gateway.requests import ChatRequest, EmbeddingsRequest
from gateway.rules import Quota


class CallKind(StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the bearer key by the edge, checked by admission."""

    key_id: str
    team: str
    aliases: frozenset[str] | None  # None: every alias in the rules
    quota: Quota = field(default_factory=Quota)
    on_exhausted: str = "reject"
    priority: str = "standard"
    clearance: str = "public"  # the data class of this key's calls (sensitivity routing)
    tier_header: bool = False  # may pick the starting tier with x-tiergate-tier


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call may go: the alias resolved to its targets.

    ``groups`` are priority groups in order, each a tuple of (target, weight); targets of one
    group share the load by weight. Empty: ``targets`` in order, one per group.
    """

    alias: str
    targets: tuple[str, ...]
    reason: str = "alias"
    groups: tuple[tuple[tuple[str, int], ...], ...] = ()
    tier: str = ""  # the tier these targets form ("" for an alias without tiers)
    higher: tuple[Route, ...] = ()  # the tiers above this one, cheapest first (escalation)


class Allowance:
    """The upstream calls one request may make, shared by escalation, fallback and hedging.

    Mutable on purpose and carried on the (frozen) Call: every stage that calls upstream for
    this request draws from the same count, so together they never exceed ``max_attempts``.
    ``limit`` is None until the fallback chain first sees the call (it knows the policy).
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class Call:
    request_id: str
    principal: Principal
    kind: CallKind
    alias: str
    request: ChatRequest | EmbeddingsRequest
    started_ns: int
    config_version: str
    headers: Mapping[str, str] = field(
        default_factory=dict
    )  # selected x-tiergate-* request headers
    route: Route | None = None
    allowance: Allowance = field(default_factory=Allowance)

    @property
    def stream(self) -> bool:
        return isinstance(self.request, ChatRequest) and bool(self.request.stream)

    @property
    def wants_usage_chunk(self) -> bool:
        """Whether the client asked for the final usage chunk of a stream."""
        req = self.request
        return (
            isinstance(req, ChatRequest)
            and req.stream_options is not None
            and bool(req.stream_options.get("include_usage"))
        )

    def with_request(self, request: ChatRequest | EmbeddingsRequest) -> Call:
        return replace(self, request=request)

    def with_alias(self, alias: str) -> Call:
        return replace(self, alias=alias, route=None)

    def routed(self, route: Route) -> Call:
        # Spelled out: dataclasses.replace costs about 5 us a call on the hot path.
        return Call(
            self.request_id,
            self.principal,
            self.kind,
            self.alias,
            self.request,
            self.started_ns,
            self.config_version,
            self.headers,
            route,
            self.allowance,
        )


@dataclass(frozen=True, slots=True)
class Note:
    """One decision a stage made, e.g. ``Note("target", "sim-fast")``.

    ``gateway.telemetry`` is the one place that turns notes into response headers, log fields
    and metrics labels; stages never set headers themselves.
    """

    key: str
    value: str


@dataclass(slots=True)
class ReplyStats:
    """Facts filled in while a reply streams. Mutable on purpose: they arrive after the Reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    model: str | None = None  # the model name the upstream reported serving
    upstream_first_s: float = 0.0  # upstream time until the first chunk was available
    # Spent on cheaper tiers before an escalation (their answers were judged, not served):
    # added to this reply's own usage when budgets settle and cost is reported.
    earlier_tokens: int = 0
    earlier_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    chunks: AsyncIterator[bytes]
    stats: ReplyStats
    notes: tuple[Note, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # upstream headers worth relaying (rate limits)

    def noted(self, *notes: Note) -> Reply:
        return Reply(self.chunks, self.stats, self.notes + notes, self.headers)

    def with_chunks(self, chunks: AsyncIterator[bytes]) -> Reply:
        return Reply(chunks, self.stats, self.notes, self.headers)
