"""The router stage: starting tier, header and feature pins, sensitivity filtering (fake next_)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gateway.calls import Call, Principal, Reply, ReplyStats
from gateway.errors import InvalidRequest, NotCleared
from gateway.rules import parse_rules
from gateway.stages.tier_router import TierRouter, route_pin
from tests.conftest import chunks_of

pytestmark = pytest.mark.asyncio

RULES = """
data_classes: [on_prem, pii]
targets:
  cheap: {provider: openai, model: c, api_base: "http://127.0.0.1:1/v1"}
  cheap2: {provider: openai, model: c2, api_base: "http://127.0.0.1:1/v1"}
  strong: {provider: openai, model: s, api_base: "http://127.0.0.1:1/v1"}
  local: {provider: openai, model: l, api_base: "http://127.0.0.1:2/v1",
          data_classes: [on_prem]}
  local_pii: {provider: openai, model: lp, api_base: "http://127.0.0.1:2/v1",
              data_classes: [on_prem, pii]}
aliases:
  plain: {targets: [cheap, strong]}
  fixed:
    tiers:
      - {name: small, targets: [cheap, cheap2]}
      - {name: big, targets: [strong]}
    router: {kind: fixed}
  ruled:
    tiers:
      - {name: small, targets: [cheap]}
      - {name: big, targets: [strong]}
    router: {kind: rules, features: {legal: big}}
  hybrid:
    tiers:
      - {name: small, targets: [cheap, local]}
      - {name: big, targets: [strong, local_pii]}
    router: {kind: rules}
  nowhere: {targets: [cheap, strong]}
"""


class Seen:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Reply:
        self.calls.append(call)
        return Reply(chunks_of(b"{}"), ReplyStats())


def router(**kw: Any) -> TierRouter:
    rules = parse_rules(RULES, "test", env={})
    return TierRouter(rules.aliases, rules.targets, rules.data_classes, **kw)


def with_principal(call: Call, **fields: Any) -> Call:
    principal = Principal(key_id="k1", team="t1", aliases=None, **fields)
    return Call(
        call.request_id,
        principal,
        call.kind,
        call.alias,
        call.request,
        call.started_ns,
        call.config_version,
        call.headers,
    )


def with_headers(call: Call, headers: dict[str, str]) -> Call:
    return replace(call, headers=headers)


def notes(reply: Reply) -> dict[str, str]:
    return {n.key: n.value for n in reply.notes}


async def test_alias_without_tiers_keeps_its_targets_and_notes_nothing(make_call) -> None:
    seen = Seen()
    reply = await router()(make_call("plain"), seen)
    route = seen.calls[0].route
    assert route is not None and route.targets == ("cheap", "strong") and not route.higher
    assert reply.notes == ()


async def test_fixed_router_starts_cheapest_and_knows_the_tier_above(make_call) -> None:
    seen = Seen()
    reply = await router()(make_call("fixed"), seen)
    route = seen.calls[0].route
    assert route is not None and route.tier == "small" and route.targets == ("cheap", "cheap2")
    assert [r.tier for r in route.higher] == ["big"]
    assert notes(reply)["tier"] == "small" and notes(reply)["route-reason"] == "fixed"


@pytest.mark.parametrize(
    ("content", "tier"),
    [
        ("What is the capital of France?", "small"),
        ("Solve for x: 3x + 7 = 22, then prove it is unique.", "big"),
        ("Why does this fail?\n```python\ndef f(x):\n    return x[0]\n```", "big"),
    ],
)
async def test_rules_router_sends_code_and_math_to_the_strong_tier(
    make_call, content: str, tier: str
) -> None:
    seen = Seen()
    call = make_call("ruled", messages=[{"role": "user", "content": content}])
    reply = await router()(call, seen)
    assert seen.calls[0].route is not None and seen.calls[0].route.tier == tier
    assert notes(reply)["route-reason"] == "rules"


async def test_tier_header_only_for_keys_allowed_to_use_it(make_call) -> None:
    seen = Seen()
    call = make_call("fixed")
    call = with_principal(call, tier_header=True)
    call = with_headers(call, {"x-tiergate-tier": "big"})
    reply = await router()(call, seen)
    assert seen.calls[0].route is not None and seen.calls[0].route.tier == "big"
    assert notes(reply)["route-reason"] == "header"
    # The same header from a key without the right is ignored.
    plain = make_call("fixed")
    plain = with_headers(plain, {"x-tiergate-tier": "big"})
    await router()(plain, seen)
    assert seen.calls[1].route is not None and seen.calls[1].route.tier == "small"


async def test_unknown_tier_in_header_is_a_clear_400(make_call) -> None:
    call = with_principal(make_call("fixed"), tier_header=True)
    call = with_headers(call, {"x-tiergate-tier": "huge"})
    with pytest.raises(InvalidRequest, match="Unknown tier 'huge'"):
        await router()(call, Seen())


async def test_feature_pins_its_tier(make_call) -> None:
    seen = Seen()
    call = make_call("ruled")
    call = with_headers(call, {"x-tiergate-feature": "legal"})
    reply = await router()(call, seen)
    assert seen.calls[0].route is not None and seen.calls[0].route.tier == "big"
    assert notes(reply)["route-reason"] == "feature"


async def test_clearance_keeps_only_approved_targets_on_every_tier(make_call) -> None:
    seen = Seen()
    call = with_principal(make_call("hybrid"), clearance="on_prem")
    reply = await router()(call, seen)
    route = seen.calls[0].route
    assert route is not None and route.targets == ("local",)
    assert [r.targets for r in route.higher] == [("local_pii",)]
    assert notes(reply)["data-class"] == "on_prem"


async def test_header_adds_a_class_and_never_removes_the_keys(make_call) -> None:
    seen = Seen()
    call = with_principal(make_call("hybrid"), clearance="on_prem")
    call = with_headers(call, {"x-tiergate-data-class": "pii"})
    await router()(call, seen)
    route = seen.calls[0].route
    # on_prem + pii: only local_pii qualifies; the cheap tier is gone entirely.
    assert route is not None and route.targets == ("local_pii",) and route.tier == "big"
    assert not route.higher
    public = with_headers(call, {"x-tiergate-data-class": "public"})
    await router()(public, seen)
    assert seen.calls[1].route is not None and seen.calls[1].route.targets == ("local",)


async def test_no_approved_target_fails_closed(make_call) -> None:
    call = with_principal(make_call("nowhere"), clearance="on_prem")
    seen = Seen()
    with pytest.raises(NotCleared) as err:
        await router()(call, seen)
    assert err.value.status == 403 and err.value.code == "data_class_not_allowed"
    assert seen.calls == []


async def test_unknown_data_class_header_is_a_400(make_call) -> None:
    call = make_call("plain")
    call = with_headers(call, {"x-tiergate-data-class": "secret"})
    with pytest.raises(InvalidRequest, match="Unknown data class"):
        await router()(call, Seen())


class FakeScorer:
    needs_embedding = True
    version = "fake"

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def score(self, text: str, embedding: object) -> float:
        self.seen.append((text, embedding))
        return 0.9 if "hard" in text else 0.1

    def threshold_for(self, strong_share: float) -> float:
        return 1.0 - strong_share


LEARNED = RULES.replace("router: {kind: rules, features: {legal: big}}", "router: {kind: fixed}")


async def test_learned_router_scores_the_last_user_message_with_its_embedding(
    make_call,
) -> None:
    rules = parse_rules(RULES, "test", env={})
    scorer = FakeScorer()

    async def embed(text: str) -> object:
        return ("vec", text)

    aliases = dict(rules.aliases)
    policy = aliases["fixed"].router
    assert policy is not None
    aliases["fixed"] = aliases["fixed"].model_copy(
        update={"router": policy.model_copy(update={"kind": "learned", "strong_share": 0.3})}
    )
    stage = TierRouter(aliases, rules.targets, rules.data_classes, {"fixed": scorer}, embed)
    seen = Seen()
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "easy one"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "a hard one"},
    ]
    reply = await stage(make_call("fixed", messages=messages), seen)
    assert scorer.seen == [("a hard one", ("vec", "a hard one"))]
    assert seen.calls[0].route is not None and seen.calls[0].route.tier == "big"
    assert notes(reply)["route-reason"] == "learned"
    assert float(notes(reply)["route-score"]) == pytest.approx(0.9)


async def test_learned_router_starts_cheapest_when_the_embedder_fails(make_call) -> None:
    rules = parse_rules(RULES, "test", env={})

    async def broken(text: str) -> object:
        raise RuntimeError("model gone")

    aliases = dict(rules.aliases)
    policy = aliases["fixed"].router
    assert policy is not None
    aliases["fixed"] = aliases["fixed"].model_copy(
        update={"router": policy.model_copy(update={"kind": "learned"})}
    )
    stage = TierRouter(aliases, rules.targets, rules.data_classes, {"fixed": FakeScorer()}, broken)
    seen = Seen()
    reply = await stage(make_call("fixed", messages=[{"role": "user", "content": "hard"}]), seen)
    assert seen.calls[0].route is not None and seen.calls[0].route.tier == "small"
    assert notes(reply)["route-reason"] == "learned-unavailable"


async def test_the_caches_keep_apart_what_a_caller_pinned(make_call) -> None:
    """The caches run before the router: a pinned tier or feature is part of their scope
    (route_pin), so a call pinned to the strongest tier never gets a cheaper tier's answer."""
    plain = make_call("fixed")
    assert route_pin(plain) == ""
    pinned = with_headers(
        with_principal(make_call("fixed"), tier_header=True), {"x-tiergate-tier": "big"}
    )
    assert route_pin(pinned) == "tier=big"
    ignored = with_headers(make_call("fixed"), {"x-tiergate-tier": "big"})  # key without the right
    assert route_pin(ignored) == ""
    feature = with_headers(make_call("ruled"), {"x-tiergate-feature": "legal"})
    assert route_pin(feature) == "feature=legal"
