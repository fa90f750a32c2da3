"""The learned hit verifier: its features, and the shipped artifact (trained and calibrated)."""

from __future__ import annotations

import json

import pytest

from cache.guards import features
from cache.verifier import ARTIFACT, FEATURE_NAMES, load_verifier, pair_features


def test_features_are_named_and_bounded() -> None:
    x = pair_features(features("How do I learn Python?"), features("How can I learn Python?"), 0.95)
    assert len(x) == len(FEATURE_NAMES)
    assert all(-1.0 <= v <= 10.0 for v in x)


def test_the_shipped_artifact_says_where_it_came_from() -> None:
    body = json.loads(ARTIFACT.read_text())
    assert body["trained_by"] == "tiergate train cache-verifier"
    assert "test" in body["data"] and "never" in body["data"]["test"]
    assert body["data"]["calibrated_on"]["split"] == "dev"
    assert 0.0 < body["threshold"] < 1.0


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("Cancel my subscription", "Don't cancel my subscription"),
        ("Is 200 mg of ibuprofen safe?", "Is 800 mg of ibuprofen safe?"),
        ("How do I reverse a list in Python?", "How do I reverse a list in Java?"),
        ("What are the pros of remote work?", "What are the cons of remote work?"),
    ],
)
def test_traps_score_below_the_cut_even_at_a_high_cosine(cached: str, asked: str) -> None:
    verifier = load_verifier()
    assert not verifier.accepts(features(asked), features(cached), 0.96)


def test_a_close_paraphrase_is_accepted() -> None:
    verifier = load_verifier()
    a, b = features("How can I reset my password?"), features("How do I reset my password?")
    assert verifier.accepts(a, b, 0.97)
    assert verifier.probability(a, b, 0.97) > verifier.probability(a, b, 0.75)


def test_an_artifact_for_other_features_is_refused(tmp_path) -> None:
    body = json.loads(ARTIFACT.read_text())
    body["names"] = body["names"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError, match="train cache-verifier"):
        load_verifier(path)
