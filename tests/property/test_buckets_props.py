"""The token bucket under random takes, tightenings and time steps."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.targets.buckets import TokenBucket

EPS = 1e-6

capacities = st.integers(1, 100_000)
rates = st.floats(0.01, 10_000.0, allow_nan=False, allow_infinity=False)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.floats(0.0, 120.0, allow_nan=False)),
        st.tuples(st.just("take"), st.integers(0, 200_000)),
        st.tuples(st.just("set"), st.integers(-10, 200_000)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(capacity=capacities, rate=rates, steps=ops)
def test_level_stays_between_zero_and_capacity(capacity: int, rate: float, steps) -> None:
    bucket = TokenBucket(capacity, rate)
    now = 0.0
    for op, arg in steps:
        before = bucket.level(now)
        if op == "tick":
            now += arg
            after = bucket.level(now)
            # Refills at the rate, up to the capacity, never beyond.
            assert math.isclose(
                after, min(capacity, before + arg * rate), rel_tol=1e-9, abs_tol=EPS
            )
        elif op == "take":
            wait = bucket.time_until(arg, now)
            took = bucket.try_take(arg, now)
            # time_until and try_take agree: 0 wait exactly when the take succeeds.
            assert took == (wait == 0.0)
            if took:
                assert math.isclose(bucket.level(now), before - min(arg, capacity), abs_tol=EPS)
            else:
                assert bucket.level(now) == before
                # Waiting the announced time is enough (checked on a twin bucket).
                twin = TokenBucket(capacity, rate)
                twin.set_available(before, 0.0)
                assert twin.time_until(arg, wait) <= EPS
        else:
            bucket.set_available(arg, now)
            after = bucket.level(now)
            assert after <= before  # tighten only
            assert after == min(before, max(0, arg))
        level = bucket.level(now)
        assert -EPS <= level <= capacity + EPS


@settings(max_examples=200, deadline=None)
@given(capacity=capacities, rate=rates, seconds=st.floats(0.0, 600.0, allow_nan=False))
def test_refill_rate_is_honoured(capacity: int, rate: float, seconds: float) -> None:
    """Draining greedily over a span takes the capacity plus what refilled, and no more."""
    bucket = TokenBucket(capacity, rate)
    size = max(1, capacity // 7)
    steps = 50
    taken = 0
    for i in range(steps + 1):
        now = seconds * i / steps
        while bucket.try_take(size, now):
            taken += size
    left = bucket.level(seconds)
    assert taken <= capacity + rate * seconds + EPS
    if rate * seconds / steps <= capacity - size:  # drained each step: never full, nothing lost
        assert math.isclose(taken + left, capacity + rate * seconds, rel_tol=1e-9, abs_tol=1e-3)


def test_a_request_larger_than_the_capacity_waits_for_a_full_bucket() -> None:
    bucket = TokenBucket(100, 10)
    assert bucket.try_take(50, 0.0)
    assert bucket.time_until(500, 0.0) == 5.0
    assert not bucket.try_take(500, 4.9)
    assert bucket.try_take(500, 5.0)
    assert bucket.level(5.0) == 0.0
