"""Fail-open local limits: each replica's share of a window, all or nothing, refilling."""

from __future__ import annotations

from gateway.governance.ledger import Window
from gateway.governance.local_limits import LocalLimits


def test_a_replica_enforces_its_share_of_each_window() -> None:
    limits = LocalLimits(share=0.5)
    rpm = (Window("key:k:rpm", 10, 1),)
    admitted = [limits.admit(rpm, now=0.0) is None for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3  # half of 10 per minute
    refusal = limits.admit(rpm, now=0.0)
    assert refusal is not None and refusal.kind == "rate" and refusal.name == "key:k:rpm"
    assert 11.9 < refusal.retry_after_s <= 12.0  # one request refills in 60 s / 5
    assert limits.admit(rpm, now=12.0) is None


def test_windows_are_taken_all_or_nothing() -> None:
    limits = LocalLimits(share=1.0)
    small_tpm = Window("team:t:tpm", 100, 80)
    rpm = Window("key:k:rpm", 100, 1)
    assert limits.admit((rpm, small_tpm), now=0.0) is None
    refusal = limits.admit((rpm, small_tpm), now=0.0)
    assert refusal is not None and refusal.name == "team:t:tpm"
    # The refused call took nothing from the RPM window: 99 are still there.
    assert all(limits.admit((rpm,), now=0.0) is None for _ in range(99))
    assert limits.admit((rpm,), now=0.0) is not None


def test_reset_forgets_the_outage() -> None:
    limits = LocalLimits(share=1.0)
    rpm = (Window("key:k:rpm", 1, 1),)
    assert limits.admit(rpm, now=0.0) is None
    assert limits.admit(rpm, now=0.0) is not None
    limits.reset()
    assert limits.admit(rpm, now=0.0) is None
