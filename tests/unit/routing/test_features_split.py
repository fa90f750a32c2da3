"""Features and split are pure, stable functions: the same text gives the same numbers anywhere."""

from __future__ import annotations

import numpy as np

from gateway.routing.features import STAT_NAMES, shape_stats, sparse_terms, terms
from gateway.routing.split import bucket, fold_of, split_of

MMLU_LIKE = (
    "Statement 1 | Every group of order 4 is cyclic.\nA. True, True\nB. False, False\nAnswer:"
)


def test_terms_are_words_numbers_and_pairs() -> None:
    assert terms("Add 2.5 and 3") == [
        "add",
        "<num>",
        "and",
        "<num>",
        "add <num>",
        "<num> and",
        "and <num>",
    ]


def test_sparse_terms_are_distinct_sorted_buckets_with_unit_norm() -> None:
    index, value = sparse_terms("the cat the cat", dim=1024)
    assert list(index) == sorted(set(index))
    assert len(index) <= 4  # "the", "cat", "the cat", "cat the" (de-duplicated)
    assert np.isclose(value * value * len(index), 1.0)
    assert sparse_terms("", dim=1024)[1] == 0.0


def test_sparse_terms_are_stable_across_processes() -> None:
    # CRC-32, not hash(): this exact value must never change (artifacts depend on it).
    index, _ = sparse_terms("tort", dim=1 << 14)
    assert index.tolist() == [2715]


def test_shape_stats_mark_the_hard_forms() -> None:
    stats = dict(zip(STAT_NAMES, shape_stats(MMLU_LIKE), strict=True))
    assert stats["two_statements"] == 1.0
    assert stats["negation"] == 0.0
    assert stats["log_question_chars"] < stats["log_chars"]
    assert (
        dict(zip(STAT_NAMES, shape_stats("Which is NOT a prime?"), strict=True))["negation"] == 1.0
    )
    assert shape_stats("").shape == (len(STAT_NAMES),)


def test_split_is_a_stable_hash_with_about_a_fifth_held_out() -> None:
    assert bucket("hello") == bucket("hello")
    assert bucket("What is 2 + 2?") == 6  # fixed forever: the shipped split depends on it
    prompts = [f"question number {i}" for i in range(2000)]
    test_share = sum(split_of(p) == "test" for p in prompts) / len(prompts)
    assert 0.17 < test_share < 0.23
    assert [split_of(p, seed=1) for p in prompts] != [split_of(p) for p in prompts]
    assert {fold_of(p, 5) for p in prompts} == {0, 1, 2, 3, 4}
