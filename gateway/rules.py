"""The routing policy (``routing_rules/*.yaml``): pydantic models, loading and cross-checks.

Invalid rules stop the process at start, never at request time: ``load_rules`` raises
``RulesInvalid`` with one message per problem, each naming its dotted path
(``aliases.fast.targets[1]: unknown target 'sonet'``). Model names live here, never in code.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from cache.policy import EmbeddingModel, SemanticCachePolicy
from gateway.escalation.gates import GateSpec
from gateway.governance.lease_policy import Leases
from gateway.origins import Origin

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(Rule):
    input_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    output_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0


class Timeouts(Rule):
    connect_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    first_token_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    total_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class Breaker(Rule):
    """When a target is ejected (circuit breaker). See gateway/targets/ejection.py for why."""

    window_s: Annotated[float, Field(gt=0, le=600)] = 10.0  # sliding window for the ratio
    min_calls: Annotated[int, Field(ge=1)] = 10  # no ratio verdict on fewer calls than this
    failure_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    consecutive_failures: Annotated[int, Field(ge=1)] = 5
    open_s: Annotated[float, Field(gt=0, le=3600)] = 5.0  # then half-open
    half_open_probes: Annotated[int, Field(ge=1, le=100)] = 1  # concurrent probes when half-open
    # Credentials or quota refused (401/402/403, insufficient_quota): will not heal in seconds.
    auth_failure_open_s: Annotated[float, Field(gt=0, le=86400)] = 300.0


class TargetLimits(Rule):
    """The provider's own rate limits for this deployment (the throttle's buckets)."""

    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None


class Target(Rule):
    """One deployment of one model at one provider."""

    provider: Literal["openai", "azure", "litellm"]
    model: Annotated[str, Field(min_length=1)]
    api_base: Annotated[str, Field(min_length=1)]
    api_key_env: str | None = None  # name of the env var holding the key; never the key itself
    # Azure OpenAI: api_base is the deployment URL (.../openai/deployments/<name>), api_version
    # its query parameter. The key goes in ``api-key``; auth_header "authorization" sends it as
    # a bearer token instead (Entra ID: api_key_env names the variable holding the token).
    api_version: str | None = None
    auth_header: Literal["authorization", "api-key"] | None = None  # None: the provider's own

    @field_validator("api_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # YAML reads an unquoted 2024-10-21 as a date; the query parameter is its text.
        return value.isoformat() if isinstance(value, date) else value

    price: Price = Price()
    context_window: Annotated[int, Field(ge=1)] = 128_000
    timeouts: Timeouts = Timeouts()
    headers: dict[str, str] = {}  # static extra headers (e.g. Azure api-version), no secrets
    limits: TargetLimits = TargetLimits()
    breaker: Breaker | None = None  # None: resilience.breaker
    retries: Annotated[int, Field(ge=0, le=5)] = 0  # extra tries on this target before the next
    # Counts prompt tokens for budget reservations (gateway.governance.tokens); auto: from the
    # model name (OpenAI models), else an estimate of 4 characters a token.
    tokenizer: Literal["auto", "o200k_base", "cl100k_base", "estimate"] = "auto"
    # Sensitive data classes this deployment is approved to receive (e.g. on_prem, pii); names
    # come from the rules' ``data_classes``. A call of a class goes only to targets listing it.
    data_classes: list[str] = []


class AliasTarget(Rule):
    """One entry of an alias: a target with a weight inside its priority group."""

    target: str
    weight: Annotated[int, Field(ge=1, le=10_000)] = 1
    # Lower runs first. Unset: the entry's position in the list (a plain ordered chain).
    priority: Annotated[int, Field(ge=0)] | None = None


class Hedge(Rule):
    """Start the next target when the first has not produced a token by its observed p95 TTFT."""

    enabled: bool = True
    min_delay_s: Annotated[float, Field(ge=0, le=60)] = 0.05  # never hedge sooner than this
    max_delay_s: Annotated[float, Field(gt=0, le=600)] = 5.0  # hedge by then at the latest


class ExactCachePolicy(Rule):
    """The exact cache for an alias. Safe by default: only complete, deterministic answers."""

    enabled: bool = True
    ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 3600.0  # served fresh this long
    # Kept this long for degraded mode (stale answers when every target fails); >= ttl_s.
    stale_ttl_s: Annotated[float, Field(gt=0, le=90 * 86400)] = 86400.0
    store_truncated: bool = False  # also store finish_reason "length" answers
    # Also cache sampled answers (temperature > 0 or unset, n > 1): opt-in, they vary by design.
    sampled: bool = False
    # Size caps: an answer larger than max_entry_bytes is not stored; a tenant (team) stores at
    # most max_tenant_bytes per stale_ttl_s window, so it holds at most about twice that.
    max_entry_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_tenant_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**3)] = 256 * 1024 * 1024


class Tier(Rule):
    """One rung of an alias's ladder (cheap to strong): its own targets, fallback and breakers."""

    name: Annotated[str, Field(pattern=NAME)]
    targets: Annotated[list[str | AliasTarget], Field(min_length=1)]


class RulesSignals(Rule):
    """The ``rules`` router: points per signal, computed from the request in microseconds.

    A call whose points reach ``strong_points`` starts on the strongest tier. (Only the
    ``learned`` kind is calibrated to a ``strong_share``; these points are a policy to read.)
    """

    long_prompt_tokens: Annotated[int, Field(ge=1)] = 1500  # a prompt this long scores
    deep_conversation_turns: Annotated[int, Field(ge=1)] = 6  # this many user turns score
    points: dict[
        Literal["long_prompt", "deep_conversation", "code", "math", "tools", "json_schema"],
        float,
    ] = {
        "long_prompt": 1.0,
        "deep_conversation": 1.0,
        "code": 1.0,
        "math": 1.0,
        "tools": 0.5,
        "json_schema": 0.5,
    }
    strong_points: Annotated[float, Field(gt=0)] = 1.0


class RouterPolicy(Rule):
    """How an alias with tiers picks the starting tier (gateway/stages/tier_router.py)."""

    # fixed: always ``start``; rules: request signals (``signals``); learned: a trained model
    # over the prompt (``artifact``), cut so that about ``strong_share`` of calls start on top.
    kind: Literal["fixed", "rules", "learned"] = "fixed"
    start: str | None = None  # fixed: the tier name; None: the first tier
    strong_share: Annotated[float, Field(ge=0, le=1)] = 0.2
    artifact: str | None = None  # learned: directory, relative to the rules file
    signals: RulesSignals = RulesSignals()
    # Feature (x-tiergate-feature) -> tier name: a team pins a feature's starting tier.
    features: dict[str, str] = {}


class EscalationPolicy(Rule):
    """When to re-ask the next tier: any gate that fails on the cheaper tier's answer."""

    gates: Annotated[list[GateSpec], Field(min_length=1)]
    # Streaming calls: "buffer" withholds the cheap tier's stream until the gates pass (the
    # first token arrives with the whole answer); "off" streams straight through, ungated.
    streaming: Literal["buffer", "off"] = "buffer"


class Alias(Rule):
    """A name clients ask for. Its targets are tried by priority (list order unless set);
    entries sharing a priority share the load by weight (e.g. 60/40 across two providers).

    Or ``tiers`` (cheap to strong), each with its own targets: ``router`` picks the starting tier
    and ``escalation`` re-asks the next tier when a gate fails on an answer."""

    kind: Literal["chat", "embeddings"] = "chat"
    targets: list[str | AliasTarget] = []
    tiers: list[Tier] = []
    router: RouterPolicy | None = None
    escalation: EscalationPolicy | None = None
    description: str = ""
    hedge: Hedge | None = None
    # When every target fails, answer from the last good cached answer (x-tiergate-cache: stale).
    stale_on_failure: bool = False
    cache: ExactCachePolicy | None = None  # None: the rules' exact_cache
    # None: the rules' semantic_cache (off unless enabled; opt in per alias, see docs/caching.md)
    semantic_cache: SemanticCachePolicy | None = None

    def entries(self) -> list[AliasTarget]:
        """Every target of the alias (all tiers, cheap first), each with its priority."""
        items = [t for tier in self.tiers for t in tier.targets] if self.tiers else self.targets
        return entries_of(items)

    def tier_entries(self) -> list[tuple[str, list[AliasTarget]]]:
        """(tier name, entries) cheap to strong; an alias without tiers is one tier."""
        if not self.tiers:
            return [("default", self.entries())]
        return [(tier.name, entries_of(tier.targets)) for tier in self.tiers]

    def target_names(self) -> list[str]:
        return [e.target for e in self.entries()]


def entries_of(items: list[str | AliasTarget]) -> list[AliasTarget]:
    out = []
    for i, item in enumerate(items):
        entry = AliasTarget(target=item) if isinstance(item, str) else item
        if entry.priority is None:
            entry = entry.model_copy(update={"priority": i})
        out.append(entry)
    return out


class Budgets(Rule):
    """Spend limits; None: no limit. Periods are UTC days and months."""

    calls_per_day: Annotated[int, Field(ge=0)] | None = None
    tokens_per_day: Annotated[int, Field(ge=0)] | None = None
    tokens_per_month: Annotated[int, Field(ge=0)] | None = None
    usd_per_day: Annotated[float, Field(ge=0)] | None = None
    usd_per_month: Annotated[float, Field(ge=0)] | None = None


class Quota(Rule):
    """Limits of a key or a team: request and token rates, and budgets."""

    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    budgets: Budgets = Budgets()


class Key(Rule):
    """A key declared in the rules (GitOps); keys can also be managed through the admin API."""

    id: Annotated[str, Field(pattern=NAME)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    team: str = "default"
    aliases: list[str] | None = None  # None: every alias
    quota: Quota = Quota()
    on_exhausted: Literal["reject", "downgrade"] = "reject"
    priority: Literal["interactive", "standard", "batch"] = "standard"
    # The data class of this key's calls: "public" (any target), or a name from the rules'
    # data_classes; its calls then go only to targets that list it (sensitivity routing).
    clearance: str = "public"
    # May pick the starting tier itself with the x-tiergate-tier request header.
    tier_header: bool = False


class Limits(Rule):
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    # A request body must be complete this long after it started (408 otherwise).
    body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0


class Resilience(Rule):
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 4  # upstream calls per request, in all
    # Retries (attempts after a request's first) may add at most this share to upstream calls,
    # plus a floor so a quiet gateway can still retry: an outage never becomes a retry storm.
    retry_budget_ratio: Annotated[float, Field(ge=0, le=1)] = 0.2
    retry_budget_min_per_s: Annotated[float, Field(ge=0)] = 5.0
    backoff_base_s: Annotated[float, Field(ge=0, le=10)] = 0.05
    backoff_max_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    breaker: Breaker = Breaker()
    share_breakers: bool = False  # share ejections across replicas through Redis
    content_policy: Literal["return", "fallback"] = "return"


class Admin(Rule):
    """The admin API's credential: never a user key (the governance issue adds managed ones)."""

    key_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None  # None: no admin API


class ResponsesStore(Rule):
    """Stored Responses API answers (``store``), for ``GET /v1/responses/{id}`` and
    ``previous_response_id``; kept in the state store for ``ttl_s``."""

    enabled: bool = True
    ttl_s: Annotated[float, Field(gt=0, le=90 * 86400)] = 30 * 86400.0


class Idempotency(Rule):
    ttl_s: Annotated[float, Field(ge=60, le=7 * 86400)] = 86400.0
    in_flight: Literal["conflict", "wait"] = "conflict"  # a duplicate of a running request
    wait_s: Annotated[float, Field(gt=0, le=600)] = 30.0


class SessionCaps(Rule):
    """Caps per ``x-tiergate-session`` (per key): stop a runaway agent loop."""

    max_calls: Annotated[int, Field(ge=1)] | None = None
    max_usd: Annotated[float, Field(ge=0)] | None = None


class Governance(Rule):
    teams: dict[str, Quota] = {}
    # Per x-tiergate-feature budgets and limits (a feature without an entry is only counted).
    features: dict[str, Quota] = {}
    session: SessionCaps = SessionCaps()
    global_quota: Quota = Quota()
    # Output tokens reserved when a client sets no max_tokens (also sent upstream as the cap).
    default_output_cap_tokens: Annotated[int, Field(ge=1)] = 1024
    # A reservation of a replica that died is returned after this long.
    reservation_ttl_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    # The alias a key with on_exhausted: downgrade is moved to when a budget runs out.
    downgrade_alias: str | None = None
    idempotency: Idempotency = Idempotency()
    # Backpressure: how long a call may wait for a target at capacity, and how many may wait.
    queue_max_wait_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    queue_max_waiting: Annotated[int, Field(ge=0)] = 10_000
    # Alert (log event + metric) when one request costs more than this.
    alert_request_usd: Annotated[float, Field(gt=0)] | None = None
    # Alert when an hour's spend (per team and overall) passes this many times the trailing
    # 7-day mean hourly spend, and at least anomaly_min_usd; checked once a minute.
    anomaly_factor: Annotated[float, Field(gt=1)] = 2.0
    anomaly_min_usd: Annotated[float, Field(ge=0)] = 1.0
    # Every alert is also POSTed here as JSON (optional; operator's URL, never a client's).
    alert_webhook_url: str | None = None
    # Redis unreachable: "closed" answers 503 + Retry-After; "open" keeps serving with each
    # replica enforcing local_share of every rate limit by itself, budgets unchecked meanwhile.
    state_outage: Literal["closed", "open"] = "closed"
    local_share: Annotated[float, Field(gt=0, le=1)] = 1.0
    # Budgets and rate windows spent from per-replica leases (gateway/governance/leases.py).
    leases: Leases = Leases()


class Rules(Rule):
    version: str | None = None
    targets: Annotated[dict[str, Target], Field(min_length=1)]
    aliases: Annotated[dict[str, Alias], Field(min_length=1)]
    keys: list[Key] = []
    limits: Limits = Limits()
    resilience: Resilience = Resilience()
    exact_cache: ExactCachePolicy = ExactCachePolicy()
    semantic_cache: SemanticCachePolicy = SemanticCachePolicy()
    embedding: EmbeddingModel = EmbeddingModel()  # the semantic cache's model
    governance: Governance = Governance()
    admin: Admin = Admin()
    responses: ResponsesStore = ResponsesStore()
    # Names of sensitive data classes (e.g. on_prem, pii) that targets may be approved for and
    # calls may carry (a key's clearance, the x-tiergate-data-class header). "public": none.
    data_classes: list[Annotated[str, Field(pattern=NAME)]] = []
    _base_dir: Path = PrivateAttr(default_factory=Path)

    @property
    def base_dir(self) -> Path:
        """The rules file's directory: relative artifact paths are resolved against it."""
        return self._base_dir

    @property
    def config_version(self) -> str:
        assert self.version is not None  # load_rules always sets it
        return self.version

    def needs_embedder(self) -> bool:
        """Whether the embedding model must be loaded: a semantic cache or a learned router."""
        return bool(self.semantic_policies()) or any(
            a.router is not None and a.router.kind == "learned" for a in self.aliases.values()
        )

    def semantic_policies(self) -> dict[str, SemanticCachePolicy]:
        """The chat aliases whose semantic cache is on, with their policy."""
        return {
            name: policy
            for name, alias in self.aliases.items()
            if alias.kind == "chat"
            and (policy := alias.semantic_cache or self.semantic_cache).enabled
        }


class RulesInvalid(ValueError):
    """The rules file is invalid; ``problems`` are ``dotted.path: message`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: invalid routing rules\n  " + "\n  ".join(problems))
        self.problems = problems


def dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def cross_check(rules: Rules, env: Mapping[str, str]) -> list[str]:
    """Problems pydantic cannot see alone: references between sections, URLs, secrets."""
    problems: list[str] = []
    name_re = re.compile(NAME)
    for name, target in rules.targets.items():
        where = f"targets.{name}"
        if not name_re.match(name):
            problems.append(f"{where}: invalid target name")
        try:
            Origin.parse(target.api_base)
        except ValueError as exc:
            problems.append(f"{where}.api_base: {exc}")
        if target.api_key_env is not None and target.api_key_env not in env:
            problems.append(
                f"{where}.api_key_env: environment variable {target.api_key_env} is not set"
            )
        if target.provider == "azure" and not target.api_version:
            problems.append(f"{where}.api_version: an azure target needs its api-version")
        if target.provider == "litellm" and "/" not in target.model:
            problems.append(
                f"{where}.model: a litellm target names its wire format, "
                f"e.g. 'anthropic/{target.model}'"
            )
    for name, alias in rules.aliases.items():
        if not name_re.match(name):
            problems.append(f"aliases.{name}: invalid alias name")
        for where, target_name in target_paths(f"aliases.{name}", alias):
            if target_name not in rules.targets:
                problems.append(f"{where}: unknown target '{target_name}'")
        for tier_name, entries in alias.tier_entries():
            listed = [e.target for e in entries]
            if len(set(listed)) != len(listed):
                where = f"aliases.{name}" + (f".tiers.{tier_name}" if alias.tiers else "")
                problems.append(f"{where}.targets: a target is listed twice")
    for name, alias in rules.aliases.items():
        problems.extend(check_tiers(f"aliases.{name}", alias, rules))
    problems.extend(check_data_classes(rules))
    for name, alias in rules.aliases.items():
        if alias.kind != "chat" and alias.semantic_cache and alias.semantic_cache.enabled:
            problems.append(f"aliases.{name}.semantic_cache: only chat aliases have one")
    webhook = rules.governance.alert_webhook_url
    if webhook is not None:
        try:
            Origin.parse(webhook)
        except ValueError as exc:
            problems.append(f"governance.alert_webhook_url: {exc}")
    model_dir = rules.embedding.model_dir
    if model_dir is not None and not Path(model_dir).is_dir():
        problems.append(f"embedding.model_dir: no directory at {model_dir}")
    seen: set[str] = set()
    if rules.admin.key_sha256 is not None and any(
        k.sha256 == rules.admin.key_sha256 for k in rules.keys
    ):
        problems.append("admin.key_sha256: the admin key must not also be a user key")
    for i, key in enumerate(rules.keys):
        if key.id in seen:
            problems.append(f"keys[{i}].id: duplicate key id '{key.id}'")
        seen.add(key.id)
        for j, alias_name in enumerate(key.aliases or ()):
            if alias_name not in rules.aliases:
                problems.append(f"keys[{i}].aliases[{j}]: unknown alias '{alias_name}'")
    return problems


def target_paths(where: str, alias: Alias) -> list[tuple[str, str]]:
    """(dotted path, target name) of every target an alias names, tiers included."""
    if not alias.tiers:
        return [(f"{where}.targets[{i}]", e.target) for i, e in enumerate(alias.entries())]
    return [
        (f"{where}.tiers[{t}].targets[{i}]", e.target)
        for t, tier in enumerate(alias.tiers)
        for i, e in enumerate(entries_of(tier.targets))
    ]


def check_tiers(where: str, alias: Alias, rules: Rules) -> list[str]:
    """An alias has targets or tiers (not both); router and escalation need tiers."""
    problems: list[str] = []
    if not alias.targets and not alias.tiers:
        problems.append(f"{where}.targets: list at least one target (or give tiers)")
    if alias.targets and alias.tiers:
        problems.append(f"{where}: give either targets or tiers, not both")
    names = [t.name for t in alias.tiers]
    if len(set(names)) != len(names):
        problems.append(f"{where}.tiers: a tier name is used twice")
    if alias.tiers and alias.kind != "chat":
        problems.append(f"{where}.tiers: only chat aliases have tiers")
    router, escalation = alias.router, alias.escalation
    if router is not None:
        if not alias.tiers:
            problems.append(f"{where}.router: a router needs tiers")
        if router.start is not None and router.start not in names:
            problems.append(f"{where}.router.start: unknown tier '{router.start}'")
        for feature, tier in router.features.items():
            if tier not in names:
                problems.append(f"{where}.router.features.{feature}: unknown tier '{tier}'")
        if router.kind == "learned":
            if router.artifact is None:
                problems.append(f"{where}.router.artifact: a learned router needs its artifact")
            elif not (rules.base_dir / router.artifact).is_dir():
                problems.append(f"{where}.router.artifact: no directory at {router.artifact}")
    if escalation is not None and len(alias.tiers) < 2:
        problems.append(f"{where}.escalation: escalation needs at least two tiers")
    if escalation is not None:
        from gateway.escalation.gates import build_gates

        try:  # loads the learned gates' artifacts: a bad one stops the rules here, not later
            build_gates(escalation.gates, rules.base_dir)
        except ValueError as exc:
            problems.append(f"{where}.escalation.gates: {exc}")
    for i, spec in enumerate(escalation.gates if escalation is not None else ()):
        if spec.kind != "verifier":
            continue
        verifier = rules.aliases.get(spec.alias)
        if verifier is None or verifier.tiers or verifier.kind != "chat":
            problems.append(
                f"{where}.escalation.gates[{i}].alias: '{spec.alias}' is not a chat alias "
                "without tiers"
            )
    return problems


def check_data_classes(rules: Rules) -> list[str]:
    known = set(rules.data_classes)
    problems: list[str] = []
    if "public" in known:
        problems.append("data_classes: 'public' is implied (no class), do not list it")
    for name, target in rules.targets.items():
        for i, cls in enumerate(target.data_classes):
            if cls not in known:
                problems.append(f"targets.{name}.data_classes[{i}]: unknown data class '{cls}'")
    for i, key in enumerate(rules.keys):
        if key.clearance != "public" and key.clearance not in known:
            problems.append(f"keys[{i}].clearance: unknown data class '{key.clearance}'")
    return problems


def parse_rules(
    text: str, source: str, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Rules:
    """Validate rules from YAML text; raise ``RulesInvalid`` listing every problem.

    ``base_dir``: where relative paths in the rules (artifacts) start; default the working dir.
    """
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesInvalid(source, [f"(root): not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise RulesInvalid(source, ["(root): expected a mapping"])
    try:
        rules = Rules.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{dotted(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise RulesInvalid(source, problems) from None
    rules._base_dir = base_dir or Path()
    problems = cross_check(rules, os.environ if env is None else env)
    for name, alias in rules.aliases.items():
        policy = alias.cache or rules.exact_cache
        if policy.stale_ttl_s < policy.ttl_s:
            where = f"aliases.{name}.cache" if alias.cache else "exact_cache"
            problems.append(f"{where}.stale_ttl_s: must be >= ttl_s")
    downgrade = rules.governance.downgrade_alias
    if downgrade is not None and downgrade not in rules.aliases:
        problems.append(f"governance.downgrade_alias: unknown alias '{downgrade}'")
    if rules.resilience.backoff_max_s < rules.resilience.backoff_base_s:
        problems.append("resilience.backoff_max_s: must be >= backoff_base_s")
    if problems:
        raise RulesInvalid(source, problems)
    if rules.version is None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        rules = rules.model_copy(update={"version": digest})
        rules._base_dir = base_dir or Path()
    return rules


def load_rules(path: str | Path, env: Mapping[str, str] | None = None) -> Rules:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesInvalid(str(p), [f"(root): cannot read file: {exc.strerror}"]) from None
    return parse_rules(text, str(p), env, base_dir=p.parent)
