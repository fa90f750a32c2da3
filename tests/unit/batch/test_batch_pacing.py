"""Pacing window maths, graduated waits, header updates, concurrency, backoff."""

from __future__ import annotations

import random

from gateway.batch.pacing import (
    Pacer,
    Window,
    backoff_s,
    graduated_wait_s,
    parse_reset_s,
)


def test_window_sums_the_last_minute_only() -> None:
    w = Window()
    w.add(0.0, 100)
    w.add(30.0, 50)
    assert w.used(59.0) == 150
    assert w.used(60.0) == 50
    assert w.used(90.0) == 0


def test_window_free_at_is_when_enough_expired() -> None:
    w = Window()
    w.add(0.0, 600)
    w.add(10.0, 300)
    assert w.free_at(20.0, 100, 1000) == 20.0
    assert w.free_at(20.0, 200, 1000) == 60.0  # the first event leaves at 60
    assert w.free_at(20.0, 900, 1000) == 70.0


def test_adjusting_an_entry_corrects_the_sum_until_it_expires() -> None:
    w = Window()
    entry = w.add(0.0, 100)
    w.adjust(entry, 40)
    assert w.used(1.0) == 40
    assert w.used(61.0) == 0
    w.adjust(entry, 500)  # gone: no effect
    assert w.used(61.0) == 0


def test_graduated_waits_at_85_95_98() -> None:
    assert graduated_wait_s(0.50, 2.0) == 0.0
    assert graduated_wait_s(0.84, 2.0) == 0.0
    assert graduated_wait_s(0.90, 2.0) == 1.0
    assert graduated_wait_s(0.96, 2.0) == 2.0


def test_pacer_never_lets_a_call_pass_98_percent() -> None:
    p = Pacer(tpm=6000, rpm=None, max_concurrency=4)
    p.sent(0.0, 5800)
    # 5800 + 100 > 0.98 x 6000: wait until the 5800 leave the window.
    assert p.wait_s(1.0, 100, graduated=False) == 59.0
    q = Pacer(tpm=6000, rpm=None, max_concurrency=4)
    q.sent(0.0, 4000)
    assert q.wait_s(1.0, 100) == 0.0  # 68%
    q.sent(1.0, 1400)  # 90% after the next call
    assert q.wait_s(2.0, 60) == 0.5 * 60 / 100  # half the refill time of the call


def test_rpm_limits_too() -> None:
    p = Pacer(tpm=None, rpm=60, max_concurrency=4)
    for i in range(58):
        p.sent(float(i) / 100, 1)
    assert p.wait_s(1.0, 1, graduated=False) > 0


def test_headers_lower_the_limit_and_show_what_others_use() -> None:
    p = Pacer(tpm=10_000, rpm=None, max_concurrency=4)
    p.sent(0.0, 1000)
    p.observe(1.0, {"x-ratelimit-limit-tokens": "8000", "x-ratelimit-remaining-tokens": "5000"})
    assert p.tpm == 8000
    assert p.foreign_tokens == 2000  # 3000 used of the shared limit, 1000 of them ours
    assert p.share(1.0) == (1000 + 2000) / 8000


def test_settle_and_refund_replace_the_estimate() -> None:
    p = Pacer(tpm=10_000, rpm=100, max_concurrency=4)
    booking = p.sent(0.0, 500)
    p.settle(booking, 320)
    assert p.tokens.used(1.0) == 320
    refused = p.sent(2.0, 500)
    p.refund(refused)
    assert p.tokens.used(3.0) == 320 and p.requests.used(3.0) == 1


def test_concurrency_halves_on_429_and_grows_back() -> None:
    p = Pacer(tpm=10_000, rpm=None, max_concurrency=8)
    p.adapt(0.0, limited=True)
    assert p.concurrency == 4 and p.rate_limited == 1
    p.adapt(0.0, limited=False)
    assert p.concurrency == 5
    for _ in range(10):
        p.adapt(0.0, limited=False)
    assert p.concurrency == 8


def test_backoff_is_full_jitter_on_the_ladder_and_honours_retry_after() -> None:
    rng = random.Random(1)
    for attempt, cap in enumerate((1, 2, 4, 8, 16, 16)):
        waits = [backoff_s(attempt, None, rng) for _ in range(200)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8
    assert backoff_s(0, 5.0, rng) == 5.0


def test_reset_durations_parse() -> None:
    assert parse_reset_s("20ms") == 0.02
    assert parse_reset_s("1.5s") == 1.5
    assert parse_reset_s("6m0s") == 360.0
    assert parse_reset_s("1h2m3s") == 3723.0
    assert parse_reset_s("2") == 2.0
    assert parse_reset_s("soon") is None


def test_nothing_remaining_blocks_until_the_reset() -> None:
    p = Pacer(tpm=None, rpm=None, max_concurrency=4)
    p.observe(
        10.0,
        {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0",
         "x-ratelimit-reset-requests": "1.5s"},
    )  # fmt: skip
    assert p.wait_s(10.0, 1) == 1.5
    assert p.wait_s(12.0, 1, graduated=False) == 0.0


def test_the_progress_line_shows_rate_tokens_cost_and_eta() -> None:
    import io

    from gateway.batch.progress import Progress
    from gateway.batch.runner import RunTotals

    progress = Progress(stream=io.StringIO(), todo=100, done_before=0)
    totals = RunTotals(answered=50, calls=3, cost_usd=0.25, started=0.0)
    pacer = Pacer(tpm=1000, rpm=None, max_concurrency=2)
    pacer.sent(10.0, 400)
    line = progress.line(totals, pacer, 10.0)
    assert line.startswith("[##########----------]  50% 50 done, 50 left | 5.0 rec/s")
    assert "/1,000 tok/min" in line and "$0.2500" in line and "ETA 0h00m10s" in line
