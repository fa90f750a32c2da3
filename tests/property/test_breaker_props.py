"""The breaker state machine under random sequences of admissions, verdicts and time steps."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.rules import Breaker as Policy
from gateway.targets.breaker import CLOSED, HALF_OPEN, OPEN, WINDOW_BUCKETS, Breaker

EPS = 1e-9

policies = st.builds(
    Policy,
    window_s=st.sampled_from([1.0, 5.0, 10.0]),
    min_calls=st.integers(1, 8),
    failure_ratio=st.sampled_from([0.25, 0.5, 0.75, 1.0]),
    consecutive_failures=st.integers(1, 6),
    open_s=st.sampled_from([0.5, 1.0, 3.0]),
    half_open_probes=st.integers(1, 3),
    auth_failure_open_s=st.sampled_from([2.0, 30.0]),
)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.5, 7.0, 30.0])),
        st.tuples(st.just("allow"), st.just(0)),
        st.tuples(st.just("finish"), st.tuples(st.integers(0, 7), st.booleans())),
        st.tuples(st.just("cancel"), st.tuples(st.integers(0, 7), st.just(False))),
        st.tuples(st.just("eject"), st.sampled_from([0.5, 5.0])),
        st.tuples(st.just("restore"), st.just(0)),
    ),
    max_size=120,
)


@dataclass
class Model:
    """What the test itself knows: attempts in flight and the records since the last close."""

    in_flight: list[int] = field(default_factory=list)  # tickets; 0: admitted while closed
    records: list[tuple[float, bool]] = field(default_factory=list)
    consecutive: int = 0

    def reset(self) -> None:
        self.records.clear()
        self.consecutive = 0


def exact_counts(records: list[tuple[float, bool]], start: float, now: float) -> tuple[int, int]:
    inside = [ok for t, ok in records if start <= t <= now]
    return len(inside), sum(1 for ok in inside if not ok)


@settings(max_examples=300, deadline=None)
@given(policy=policies, steps=ops)
def test_breaker_invariants(policy: Policy, steps: list[tuple[str, object]]) -> None:
    b = Breaker(policy, probe_lease_s=1e9)
    m = Model()
    now = 0.0
    bucket_s = policy.window_s / WINDOW_BUCKETS
    for op, arg in steps:
        before = b.state
        if op == "tick":
            assert isinstance(arg, float)
            now += arg
        elif op == "allow":
            opened_until = b.snapshot(now).open_until
            allowed = b.allow(now)
            if before is CLOSED:
                assert allowed
            if before is OPEN and opened_until is not None and now < opened_until:
                assert not allowed
                assert b.state is OPEN
            if allowed:
                m.in_flight.append(b.probe_epoch if b.state is HALF_OPEN else 0)
        elif op in ("finish", "cancel") and m.in_flight:
            assert isinstance(arg, tuple)
            index, ok = arg
            ticket = m.in_flight.pop(index % len(m.in_flight))
            if op == "cancel":
                if ticket:
                    b.release_probe(ticket)
                assert b.state is before
                continue
            current_probe = before is HALF_OPEN and ticket == b.probe_epoch
            b.record(ok, now, probe=ticket)
            if before is CLOSED:
                m.records.append((now, ok))
                m.consecutive = 0 if ok else m.consecutive + 1
                snap = b.snapshot(now)
                tripped = m.consecutive >= policy.consecutive_failures or (
                    snap.calls >= policy.min_calls
                    and snap.failures >= policy.failure_ratio * snap.calls - EPS
                )
                # Opens exactly when a condition holds.
                assert (b.state is OPEN) == tripped
            elif current_probe:
                assert b.state is (CLOSED if ok else OPEN)
            else:
                assert b.state is before  # stragglers move nothing
        elif op == "eject":
            assert isinstance(arg, float)
            b.eject(now, now + arg, "manual")
            assert b.state is OPEN
            assert not b.allow(now)
        elif op == "restore":
            b.restore(now)
            assert b.state is CLOSED
            m.reset()  # a fresh window, even when it was closed already
        if b.state is CLOSED and before is not CLOSED:
            m.reset()
        if b.state is OPEN and before is not OPEN:
            m.consecutive = 0

        snap = b.snapshot(now)
        # Never more probes out than allowed, counting what the test itself holds.
        current = [t for t in m.in_flight if t and t == b.probe_epoch]
        if b.state is HALF_OPEN:
            assert len(current) == snap.probes_in_flight <= policy.half_open_probes
        # The bucketed window holds at least the last window_s - one bucket, at most window_s.
        if b.state is CLOSED:
            low = exact_counts(m.records, now - policy.window_s + bucket_s + EPS, now)
            high = exact_counts(m.records, now - policy.window_s - EPS, now)
            assert low[0] <= snap.calls <= high[0]
            assert low[1] <= snap.failures <= high[1]
        assert 0.0 <= snap.error_ratio <= 1.0
        assert snap.failures <= snap.calls


@settings(max_examples=200, deadline=None)
@given(policy=policies, waits=st.lists(st.sampled_from([0.1, 0.5, 1.0, 4.0]), max_size=30))
def test_an_open_breaker_admits_nothing_before_open_until(
    policy: Policy, waits: list[float]
) -> None:
    b = Breaker(policy)
    now = 0.0
    for _ in range(policy.consecutive_failures):
        b.record(False, now)
    assert b.state is OPEN
    until = b.snapshot(now).open_until
    assert until == policy.open_s
    for wait in waits:
        now += wait
        allowed = b.allow(now)
        assert allowed == (now >= until) or b.state is HALF_OPEN
        if now < until:
            assert not allowed
        if allowed:
            b.record(True, now, probe=b.probe_epoch)
            assert b.state is CLOSED
            return
