"""Planner: a call's limits planned once per key, in the order the ledger expects."""

from __future__ import annotations

from gateway.calls import Principal
from gateway.governance.plans import Planner
from gateway.rules import Budgets, Governance, Quota
from tests.conftest import CallFactory

QUOTA = Quota(rpm=60, tpm=1000, budgets=Budgets(tokens_per_day=500, usd_per_month=2.0))


def governance() -> Governance:
    return Governance.model_validate(
        {
            "teams": {"t": {"budgets": {"usd_per_day": 1.0}}},
            "features": {"summarize": {"rpm": 10}},
            "global_quota": {"rpm": 100},
        }
    )


def test_windows_and_charges_in_scope_order_with_this_calls_amounts(
    make_call: CallFactory,
) -> None:
    planner = Planner(governance())
    p = Principal("k", "t", None, quota=QUOTA)
    shape = planner.shape(make_call("a", principal=p, headers={"x-tiergate-feature": "summarize"}))
    assert shape is not None
    reservation, windows = planner.plan(shape, tokens=40, usd=7)
    assert [(w.name, w.limit, w.cost) for w in windows] == [
        ("key:k:rpm", 60, 1),
        ("key:k:tpm", 1000, 40),
        ("feature:summarize:rpm", 10, 1),
        ("global:rpm", 100, 1),
    ]
    assert [(c.name, c.limit, c.amount) for c in reservation.charges] == [
        ("key:k:tokens:day", 500, 40),
        ("key:k:usd:month", 2_000_000, 7),
        ("team:t:usd:day", 1_000_000, 7),
    ]
    rates_only, _ = planner.plan(shape, tokens=40, usd=7, budgets=False)
    assert rates_only.charges == () and rates_only.id != reservation.id


def test_a_new_principal_is_planned_anew_and_idle_headers_do_not_split_the_cache(
    make_call: CallFactory,
) -> None:
    planner = Planner(governance())
    p = Principal("k", "t", None, quota=QUOTA)
    first = planner.shape(make_call("a", principal=p))
    # A feature the rules do not name and a session without session caps change nothing.
    for k in range(50):
        odd = {"x-tiergate-feature": f"f{k}" * 1000, "x-tiergate-session": f"s{k}" * 1000}
        assert planner.shape(make_call("a", principal=p, headers=odd)) is first
    assert len(planner._shapes) == 1
    # The keystore hands out a new Principal for a managed key each second: same quota, same
    # shape, and the cache does not grow (it grew by one entry a key a second before).
    for _ in range(20):
        fresh = Principal("k", "t", None, quota=QUOTA)
        assert planner.shape(make_call("a", principal=fresh)) is first
    assert len(planner._shapes) == 1
    changed = Principal("k", "t", None, quota=Quota(rpm=5))  # e.g. the admin API changed it
    shape = planner.shape(make_call("a", principal=changed))
    assert shape is not None and shape.windows[0].limit == 5
