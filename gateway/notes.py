"""The keys of the ``Note``s stages record: one constant per kind of decision.

Why constants: the producers (stages) and the consumers (``gateway.outcomes``,
``gateway.telemetry``, ``gateway.tracing``) must agree on each key, and a typo in a free string
silently drops a header, a metric or a log field. The values are the wire names and stay as they
were (mixed styles included): a key in ``gateway.telemetry.HEADER_NOTES`` becomes the
``x-tiergate-<key>`` response header clients already read.
"""

from __future__ import annotations

from typing import Final

TARGET: Final = "target"  # the target that answered
ATTEMPTS: Final = "attempts"  # upstream calls made for the request
FAILED: Final = "failed"  # one per failed attempt: "<target>:<error kind>"
HEDGED: Final = "hedged"
HEDGE_WINNER: Final = "hedge_winner"
RETRY_BUDGET: Final = "retry_budget"  # an attempt refused by the retry budget
QUEUED_MS: Final = "queued-ms"  # time waited in the capacity queue
CACHE: Final = "cache"  # exact cache: hit | miss | bypass | stale | semantic_hit
CACHE_AGE: Final = "cache-age"
SIMILARITY: Final = "similarity"  # a semantic hit's similarity
SEMANTIC: Final = "semantic"  # semantic cache: miss | bypass | error | skip:<why>
SEMANTIC_VETO: Final = "semantic-veto"  # near-miss guards that refused a candidate
IDEMPOTENT_REPLAY: Final = "idempotent-replay"
DEGRADED: Final = "degraded"  # e.g. local-limits while Redis is unreachable
BUDGET_RESERVED_TOKENS: Final = "budget-reserved-tokens"
RATE_LIMIT_PREFIX: Final = "x-ratelimit-"  # x-ratelimit-{limit,remaining,reset}-{requests,tokens}
TIER: Final = "tier"  # the tier that served the answer (router or escalation)
ESCALATED: Final = "escalated"  # why it went up: failed gates or "unavailable"
ESCALATION: Final = "escalation"  # escalation skipped: stream | no-allowance
GATE: Final = "gate"  # one judged tier's verdict: "<tier>:<gate>:<reason>" or "<tier>:pass"
GATE_SCORE: Final = "gate-score"
ROUTE_REASON: Final = "route-reason"  # how the starting tier was chosen
ROUTE_SCORE: Final = "route-score"
DATA_CLASS: Final = "data-class"  # the call's sensitive data classes
