from __future__ import annotations

import pytest

from gateway.escalation.arithmetic import agrees, evaluate, find_checks


def _summary(text: str) -> list[tuple[str, bool]]:
    return [(c.expression, c.ok) for c in find_checks(text)]


def test_annotations_and_inline_computations_are_checked() -> None:
    text = "He runs 3 x 60 = <<3*60=180>>180 meters.\nThen 15 + 26 = 40 more."
    assert _summary(text) == [("3*60", True), ("3 * 60", True), ("15 + 26", False)]


def test_chains_are_checked_against_the_number_they_end_in() -> None:
    assert _summary("8 + 6 + 4 + (5 * 5) = 8 + 6 + 4 + 25 = 43 hours") == [("8 + 6 + 4 + 25", True)]
    assert _summary("2 * 3 = 6 = 7") == [("2 * 3", True)]


def test_money_thousands_and_markdown_are_read() -> None:
    assert _summary("$1,300 \\* 10/100 = $130.") == [("1300 * 10/100", True)]
    assert _summary("8 x $5 x 60% = $24") == [("8 * 5 * 60%", True)]


def test_percent_on_the_result_names_the_unit() -> None:
    assert _summary("(6 / 12) * 100 = 50%") == [("(6 / 12) * 100", True)]
    assert _summary("(6 / 12) * 100 = 40%") == [("(6 / 12) * 100", False)]


def test_words_and_variables_are_skipped_not_failed() -> None:
    assert find_checks("20% of 50 = 10") == ()
    assert find_checks("2x = 10 so x = 5") == ()
    assert find_checks("15 cups + 25 cups = 45 cups") == ()


def test_noise_before_the_expression_is_dropped() -> None:
    assert _summary("It costs $5. 3 + 2 = 6") == [("3 + 2", False)]


@pytest.mark.parametrize(
    ("computed", "stated", "text", "ok"),
    [
        (10 / 3, 3.33, "3.33", True),
        (10 / 3, 3.3, "3.3", True),
        (10 / 3, 3.4, "3.4", False),
        (100.4, 100.0, "100", True),
        (101.0, 100.0, "100", False),
    ],
)
def test_rounding_to_the_stated_precision_agrees(
    computed: float, stated: float, text: str, ok: bool
) -> None:
    assert agrees(computed, stated, text) is ok


def test_evaluate_is_plain_arithmetic_only() -> None:
    assert evaluate("2 ^ 3 + (4 - 1) / 2") == 9.5
    assert evaluate("-3 * -2") == 6.0
    assert evaluate("__import__('os')") is None
    assert evaluate("2 ** 1000") is None  # no huge powers
    assert evaluate("1 / 0") is None
    assert evaluate("(1 + 2") is None


def test_pathological_answers_are_bounded() -> None:
    # One huge sum before "=": only its tail is read, so it is judged by that tail (or skipped).
    checks = find_checks("1 + " * 20_000 + "1 = 5")
    assert all(len(c.expression) <= 160 for c in checks)
    assert find_checks("= " * 50_000) == ()
