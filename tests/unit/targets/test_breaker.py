from __future__ import annotations

import pytest

from gateway.rules import Breaker as Policy
from gateway.targets.breaker import CLOSED, HALF_OPEN, OPEN, Breaker


def breaker(**policy: object) -> Breaker:
    fields = {"window_s": 10.0, "min_calls": 4, "failure_ratio": 0.5, "consecutive_failures": 5}
    return Breaker(Policy.model_validate(fields | policy))


def test_stays_closed_below_min_calls_even_when_all_fail() -> None:
    b = breaker(min_calls=4, consecutive_failures=10)
    for t in range(3):
        b.record(False, float(t))
    assert b.state is CLOSED
    b.record(False, 3.0)
    assert b.state is OPEN
    snap = b.snapshot(3.0)
    assert snap.reason == "failure ratio 1.00 over 4 calls in 10 s"
    assert (snap.calls, snap.failures, snap.error_ratio) == (4, 4, 1.0)
    assert snap.opened_at == 3.0
    assert snap.open_until == 3.0 + 5.0


def test_opens_on_failure_ratio_with_enough_calls() -> None:
    b = breaker(min_calls=10, failure_ratio=0.6, consecutive_failures=100)
    outcomes = [True, False] * 5  # 0.5: below the ratio
    for i, ok in enumerate(outcomes):
        b.record(ok, i * 0.1)
    assert b.state is CLOSED
    b.record(False, 1.1)
    b.record(False, 1.2)  # 7 of 12 = 0.58
    assert b.state is CLOSED
    b.record(False, 1.3)  # 8 of 13 = 0.62
    assert b.state is OPEN
    assert b.reason == "failure ratio 0.62 over 13 calls in 10 s"


def test_opens_on_consecutive_failures_below_min_calls() -> None:
    b = breaker(min_calls=100, consecutive_failures=3)
    b.record(False, 0.0)
    b.record(False, 0.1)
    b.record(True, 0.2)  # a success resets the run
    b.record(False, 0.3)
    b.record(False, 0.4)
    assert b.state is CLOSED
    b.record(False, 0.5)
    assert b.state is OPEN
    assert b.reason == "3 consecutive failures"


def test_old_failures_slide_out_of_the_window() -> None:
    b = breaker(window_s=10.0, min_calls=5, consecutive_failures=100)
    for t in (0.0, 0.1, 0.2):
        b.record(False, t)
    b.record(True, 5.3)
    assert b.snapshot(5.3).failures == 3
    assert (b.snapshot(10.5).calls, b.snapshot(10.5).failures) == (1, 0)  # 0-1 s slid out
    b.record(False, 10.5)  # 1 of 2 in the window: below min_calls
    assert b.state is CLOSED
    assert b.snapshot(21.0).calls == 0


def test_a_success_that_reaches_min_calls_can_trip_the_ratio() -> None:
    b = breaker(min_calls=4, failure_ratio=0.5, consecutive_failures=100)
    for t in (0.0, 0.1, 0.2):
        b.record(False, t)
    b.record(True, 0.3)  # 3 of 4 failed
    assert b.state is OPEN


def test_open_refuses_until_open_until_then_admits_limited_probes() -> None:
    b = breaker(consecutive_failures=1, open_s=5.0, half_open_probes=2)
    b.record(False, 0.0)
    assert not b.allow(4.9)
    assert b.retry_after_s(4.0) == pytest.approx(1.0)
    assert b.snapshot(5.0).state is HALF_OPEN  # effective state, without a call
    assert b.allow(5.0)
    assert b.state is HALF_OPEN
    assert b.allow(5.0)
    assert not b.allow(5.1)  # both probe slots taken
    assert b.snapshot(5.1).probes_in_flight == 2
    b.release_probe()
    assert b.allow(5.2)


def test_probe_success_closes_and_resets_the_window() -> None:
    b = breaker(consecutive_failures=1, open_s=5.0)
    b.record(False, 0.0)
    assert b.allow(5.0)
    b.record(True, 5.5, probe=b.probe_epoch)
    assert b.state is CLOSED
    snap = b.snapshot(5.5)
    assert (snap.calls, snap.failures, snap.reason, snap.open_until) == (0, 0, None, None)
    assert snap.transitions == 3  # closed->open->half_open->closed
    assert b.last_change == "probe succeeded"


def test_probe_failure_reopens_with_doubling_capped_period() -> None:
    b = Breaker(
        Policy(consecutive_failures=1, open_s=5.0, min_calls=100),
        max_open_s=30.0,
    )
    b.record(False, 0.0)
    now = 0.0
    periods = []
    for _ in range(5):
        now = b.snapshot(now).open_until or now
        assert b.allow(now)
        b.record(False, now, probe=b.probe_epoch)
        assert b.state is OPEN
        periods.append((b.snapshot(now).open_until or 0.0) - now)
    assert periods == [10.0, 20.0, 30.0, 30.0, 30.0]
    now = b.snapshot(now).open_until or now
    assert b.allow(now)
    b.record(True, now, probe=b.probe_epoch)
    b.record(False, now + 1)  # closed again: the next trip starts at open_s
    assert b.snapshot(now + 1).open_until == now + 1 + 5.0


def test_stragglers_do_not_move_a_half_open_breaker() -> None:
    b = breaker(consecutive_failures=1, open_s=1.0)
    b.record(False, 0.0)
    b.record(True, 0.5)  # open: ignored
    assert b.state is OPEN
    assert b.allow(1.0)
    b.record(False, 1.1)  # admitted before it opened: not a probe
    b.record(True, 1.2)
    assert b.state is HALF_OPEN
    assert not b.allow(1.3)  # the real probe still holds the slot


def test_a_leaked_probe_slot_is_reclaimed_after_its_lease() -> None:
    b = Breaker(Policy(consecutive_failures=1, open_s=1.0), probe_lease_s=30.0)
    b.record(False, 0.0)
    assert b.allow(1.0)
    assert not b.allow(30.9)
    assert b.allow(31.0)


def test_eject_and_restore() -> None:
    b = breaker()
    b.eject(10.0, 70.0, "manual")
    assert b.state is OPEN
    assert not b.allow(69.0)
    assert b.reason == "manual"
    b.eject(11.0, 20.0, "shorter")  # never shortens
    assert b.snapshot(11.0).open_until == 70.0
    assert b.reason == "manual"
    b.eject(12.0, 400.0, "auth: target 'x' answered 401")
    assert b.snapshot(12.0).open_until == 400.0
    assert b.snapshot(12.0).opened_at == 10.0
    b.restore(13.0)
    assert b.state is CLOSED
    assert b.allow(13.0)
    snap = b.snapshot(13.0)
    assert snap.restored_at == 13.0
    assert snap.transitions == 2


def test_eject_in_the_past_is_ignored() -> None:
    b = breaker()
    b.eject(10.0, 10.0, "nothing")
    assert b.state is CLOSED


def test_late_failure_turns_a_success_into_a_failure() -> None:
    b = breaker(min_calls=2, failure_ratio=1.0, consecutive_failures=100)
    b.record(True, 0.0)
    b.record(True, 0.1)
    b.record_late_failure(0.2)
    snap = b.snapshot(0.2)
    assert (snap.calls, snap.failures) == (2, 1)
    b.record_late_failure(0.3)
    assert b.state is OPEN
    assert b.snapshot(0.3).calls == 2


def test_late_failure_after_the_success_slid_out_counts_a_call() -> None:
    b = breaker(consecutive_failures=100)
    b.record(True, 0.0)
    b.record_late_failure(5.0)
    snap = b.snapshot(5.0)
    assert (snap.calls, snap.failures) == (2, 1)


def test_an_earlier_periods_probe_cannot_free_a_current_slot() -> None:
    b = breaker(consecutive_failures=1, open_s=1.0, half_open_probes=1)
    b.record(False, 0.0)
    assert b.allow(1.0)
    old = b.probe_epoch
    b.eject(1.5, 2.0, "manual")
    assert b.allow(2.0)
    assert b.probe_epoch != old
    b.release_probe(old)  # the old probe was cancelled
    assert not b.allow(2.1)  # the current probe still holds the only slot
    b.record(False, 2.2, probe=old)  # nor does its verdict count as the current probe's
    assert b.state is HALF_OPEN
    b.record(True, 2.3, probe=b.probe_epoch)
    assert b.state is CLOSED
