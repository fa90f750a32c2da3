"""The generated development sets: stable splits, no question on both sides, reproducible."""

from __future__ import annotations

import random

import pytest

from gateway.eval.devsets import (
    MUTATIONS,
    _components,
    antonym,
    bucket,
    change_number,
    change_scope,
    negate,
    norm,
    swap_entity,
)


def test_bucket_is_stable_and_ignores_case_and_spacing() -> None:
    assert bucket("How do I learn Python?") == bucket("  how do i   learn python? ")
    shares = [bucket(f"question {i}") for i in range(3000)]
    assert 0.6 < shares.count("train") / 3000 < 0.8
    assert shares.count("dev") > 300 and shares.count("test") > 300


def test_a_chain_of_pairs_lands_in_one_split() -> None:
    rows = [("A?", "B?", True), ("B?", "C?", False), ("D?", "E?", True)]
    where = _components(rows)
    assert where[norm("A?")] == where[norm("B?")] == where[norm("C?")]
    assert where[norm("D?")] == where[norm("E?")]


@pytest.mark.parametrize(
    ("mutate", "text", "changed"),
    [
        (negate, "Can I get a refund?", "Can I not get a refund?"),
        (negate, "Why don't cats like water?", "Why do cats like water?"),
        (swap_entity, "Is Python good for web apps?", None),
        (change_number, "Is 200 mg of ibuprofen safe?", None),
        (change_number, "What happened in 2016?", None),
        (change_scope, "What is the best laptop?", None),
        (change_scope, "Best books for kids?", "Best books for adults?"),
        (antonym, "What is the best way to learn?", "What is the worst way to learn?"),
    ],
)
def test_each_mutation_changes_one_detail(mutate, text: str, changed: str | None) -> None:
    out = mutate(text, random.Random(3))
    assert out is not None and out != text
    if changed is not None:
        assert out == changed


def test_mutations_that_do_not_apply_say_so() -> None:
    rng = random.Random(1)
    assert swap_entity("how do i cook rice", rng) is None
    assert antonym("what is a noun", rng) is None
    assert set(MUTATIONS) == {"negation", "entity", "number", "scope", "antonym"}


def test_eval_reads_a_generated_split_and_refuses_unknown_ones() -> None:
    from gateway.eval.cache_eval import load_pairs

    pairs = load_pairs("multiturn", limit=6, split="test")
    assert len(pairs) == 6
    assert {p.category for p in pairs} <= {
        "same-context",
        "same-context-chatter",
        "context-paraphrase",
        "other-context",
        "changed-context",
        "followup-vs-standalone",
        "changed-followup",
    }
    assert pairs == load_pairs("multiturn", limit=6, split="test")  # reproducible
    with pytest.raises(ValueError, match="unknown set"):
        load_pairs("data/cache_eval/traps.jsonl", split="test")
