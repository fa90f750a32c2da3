"""``tiergate eval cache --errors``: each pair served wrongly or missed, before the table, and
the JSON line still last."""

from __future__ import annotations

import io
import json

from gateway.eval.cache_eval import Outcome, Pair, report


def test_errors_are_listed_first_and_the_json_line_stays_last() -> None:
    outcomes = [
        Outcome(Pair("Cancel my plan", "Don't cancel my plan", False, "negation"), 0.97),
        Outcome(Pair("Reset my password", "How do I reset my password?", True, "near-repeat"),
                why_not="verifier"),
        Outcome(Pair("Hi", "Hello", True, "near-repeat"), 0.95, own=True),  # served: not listed
        Outcome(Pair("A", "B", False, "scope"), None),  # refused: not listed
        Outcome(
            Pair([{"role": "user", "content": "and for kids?"}],
                 [{"role": "user", "content": "and for adults?"}], True, "chatter"),
        ),
    ]  # fmt: skip
    out = io.StringIO()
    result = report(outcomes, 0.9, False, out, errors=True)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[:3] == ["wrong", "negation", "0.970"]
    assert lines[1].split()[:3] == ["missed", "near-repeat", "verifier"]
    assert lines[2].startswith("missed") and "'and for kids?' | 'and for adults?'" in lines[2]
    assert lines[3] == ""  # then the table as without --errors
    assert json.loads(lines[-1]) == result
    plain = io.StringIO()
    report(outcomes, 0.9, False, plain)
    assert out.getvalue().endswith(plain.getvalue())
