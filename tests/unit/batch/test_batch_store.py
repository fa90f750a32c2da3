"""Checkpoints on SQLite: claims, keys, commits, skips, splits, resume after a dead worker."""

from __future__ import annotations

from pathlib import Path

from gateway.batch.store import DONE, FAILED, PENDING, CallUsage, Provenance, Store, call_key

USAGE = CallUsage(100, 10, 0.001, "ok")
PROV = Provenance("m", "t", "v1", "h", "w1", replayed=False)


def store_with(tmp_path: Path, n: int = 10, aliases: tuple[str, ...] = ("a",)) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    rows = ((f"r{i}", f"text {i}", "{}") for i in range(n))
    assert store.load("job", aliases, rows) == n
    return store


def test_loading_twice_is_a_no_op(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    assert store.load("job", ["a"], [("x", "y", "{}")]) == 0
    assert store.counts("job")["a"][PENDING] == 10


def test_claims_take_disjoint_groups_in_order_with_stable_keys(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    first = store.claim("job", "a", "w1", 4, 60)
    second = store.claim("job", "a", "w1", 4, 60)
    assert first is not None and second is not None
    assert [u.rid for u in first.units] == ["r0", "r1", "r2", "r3"]
    assert [u.rid for u in second.units] == ["r4", "r5", "r6", "r7"]
    assert first.key == call_key("job", "a", first.units) != second.key


def test_commit_marks_answers_done_and_skips_go_back_with_an_attempt(tmp_path: Path) -> None:
    store = store_with(tmp_path, 4)
    claim = store.claim("job", "a", "w1", 4, 60)
    assert claim is not None
    done = store.commit("job", claim, {"r0": "x", "r2": "y"}, USAGE, PROV, max_attempts=3)
    assert done == 2
    counts = store.counts("job")["a"]
    assert counts[DONE] == 2 and counts[PENDING] == 2 and counts["skips"] == 2
    retry = store.claim("job", "a", "w1", 4, 60)
    assert retry is not None and [u.rid for u in retry.units] == ["r1", "r3"]
    assert all(u.attempts == 1 for u in retry.units)
    assert retry.key != claim.key  # a new attempt, a new Idempotency-Key


def test_a_unit_fails_after_max_attempts(tmp_path: Path) -> None:
    store = store_with(tmp_path, 1)
    for _ in range(2):
        claim = store.claim("job", "a", "w1", 1, 60)
        assert claim is not None
        store.commit("job", claim, {}, USAGE, PROV, max_attempts=2, errored=True)
    counts = store.counts("job")["a"]
    assert counts[FAILED] == 1 and counts["errors"] == 2
    assert store.claim("job", "a", "w1", 1, 60) is None
    assert store.retry_failed("job") == 1
    again = store.claim("job", "a", "w1", 1, 60)
    assert again is not None and again.units[0].attempts == 2  # a new key
    store.commit("job", again, {}, USAGE, PROV, max_attempts=2, errored=True)
    assert store.counts("job")["a"][FAILED] == 1  # one more try only


def test_a_dead_workers_group_is_taken_again_with_the_same_key(tmp_path: Path) -> None:
    store = store_with(tmp_path, 6)
    lost = store.claim("job", "a", "dead", 3, lease_s=-1)  # its lease has already run out
    assert lost is not None
    again = store.claim("job", "a", "w2", 3, 60)
    assert again is not None and again.resumed
    assert again.key == lost.key and again.units == lost.units


def test_a_restarted_worker_adopts_its_own_groups_at_once(tmp_path: Path) -> None:
    store = store_with(tmp_path, 6)
    held = store.claim("job", "a", "w1", 3, lease_s=3600)
    assert held is not None
    fresh = store.claim("job", "a", "w2", 3, 60)
    assert fresh is not None and fresh.key != held.key  # a live lease is left alone
    assert store.adopt("job", "w1") == 3
    again = store.claim("job", "a", "w1", 3, 60)
    assert again is not None and again.key == held.key and again.resumed


def test_a_split_gives_halves_their_own_keys(tmp_path: Path) -> None:
    store = store_with(tmp_path, 5)
    claim = store.claim("job", "a", "w1", 5, 60)
    assert claim is not None
    left, right = store.split("job", claim, CallUsage(50, 5, 0.0, "malformed"), PROV)
    assert [u.rid for u in left.units] == ["r0", "r1"]
    assert [u.rid for u in right.units] == ["r2", "r3", "r4"]
    assert len({claim.key, left.key, right.key}) == 3
    assert store.commit("job", right, {"r2": 1, "r3": 2, "r4": 3}, USAGE, PROV, 3) == 3
    assert store.call_totals("job")["calls"] == 2


def test_a_second_commit_of_the_same_group_is_counted_as_duplicate(tmp_path: Path) -> None:
    store = store_with(tmp_path, 2)
    claim = store.claim("job", "a", "w1", 2, 60)
    assert claim is not None
    store.commit("job", claim, {"r0": 1, "r1": 2}, USAGE, PROV, 3)
    assert store.commit("job", claim, {"r0": 1, "r1": 2}, USAGE, PROV, 3) == 0
    assert store.call_totals("job")["duplicates"] == 2


def test_tie_breaks_cover_the_disagreements(tmp_path: Path) -> None:
    store = store_with(tmp_path, 3, aliases=("a", "b"))
    for alias, answers in (("a", {"r0": "x", "r1": "y", "r2": "z"}),
                           ("b", {"r0": "x", "r1": "q", "r2": "z"})):  # fmt: skip
        claim = store.claim("job", alias, "w1", 3, 60)
        assert claim is not None
        store.commit("job", claim, answers, USAGE, PROV, 3)
    assert store.add_tie_breaks("job", "a", "b", "c") == 1
    claim = store.claim("job", "c", "w1", 3, 60)
    assert claim is not None and [u.rid for u in claim.units] == ["r1"]


def test_a_partial_group_waits_while_calls_are_in_flight(tmp_path: Path) -> None:
    store = store_with(tmp_path, 5)
    assert store.claim("job", "a", "w1", 4, 60) is not None
    assert store.claim("job", "a", "w1", 4, 60, min_size=4) is None  # one left: wait
    tail = store.claim("job", "a", "w1", 4, 60, min_size=1)
    assert tail is not None and [u.rid for u in tail.units] == ["r4"]


def test_a_live_worker_renews_its_leases_so_nobody_takes_them_over(tmp_path: Path) -> None:
    store = store_with(tmp_path, 6)
    waiting = store.claim("job", "a", "w1", 3, lease_s=-1)  # as if its lease had run out
    assert waiting is not None
    assert store.renew("job", "w1", 60) == 3
    other = store.claim("job", "a", "w2", 3, 60)
    assert other is not None and other.key != waiting.key and not other.resumed


def test_a_changed_prompt_changes_the_idempotency_key(tmp_path: Path) -> None:
    from gateway.batch.spec import JobSpec, request_salt

    one = JobSpec.model_validate({"input": "x", "labels": ["a", "b"]})
    two = JobSpec.model_validate({"input": "x", "labels": ["a", "b", "c"]})
    units = store_with(tmp_path, 2).peek("job", "a", 2, 1)[0]
    assert call_key("job", "a", units, request_salt(one)) == call_key(
        "job", "a", units, request_salt(one)
    )
    assert call_key("job", "a", units, request_salt(one)) != call_key(
        "job", "a", units, request_salt(two)
    )
