"""Results: both models' answers kept, disagreements listed, the tie-breaker's answer final."""

from __future__ import annotations

from pathlib import Path

from gateway.batch.results import report, result_rows
from gateway.batch.spec import JobSpec
from gateway.batch.store import CallUsage, Provenance, Store

USAGE = CallUsage(10, 1, 0.0, "ok")


def answer_all(store: Store, alias: str, answers: dict[str, str]) -> None:
    claim = store.claim("job", alias, "w", 10, 60)
    assert claim is not None
    prov = Provenance(f"model-{alias}", alias, "v1", "h", "w", replayed=False)
    store.commit("job", claim, answers, USAGE, prov, 3)


def test_two_models_and_a_tie_breaker(tmp_path: Path) -> None:
    spec = JobSpec.model_validate(
        {"job_id": "job", "input": "x", "labels": ["yes", "no"], "alias": "a",
         "second_alias": "b", "tie_breaker": "c", "db": f"sqlite:///{tmp_path / 'r.db'}"}
    )  # fmt: skip
    store = Store(spec.db)
    rows = [(f"r{i}", f"t{i}", "{}") for i in range(3)]
    store.load("job", ["a", "b"], rows)
    answer_all(store, "a", {"r0": "yes", "r1": "yes", "r2": "no"})
    answer_all(store, "b", {"r0": "yes", "r1": "no", "r2": "no"})
    before = {r["id"]: r for r in result_rows(spec, store)}
    assert before["r1"]["disagree"] and before["r1"]["answer"] is None
    assert not before["r0"]["disagree"] and before["r0"]["answer"] == "yes"
    assert before["r1"]["answer_a"] == "yes" and before["r1"]["answer_b"] == "no"
    assert any("r1: yes vs no" in line for line in report(spec, store))
    assert store.add_tie_breaks("job", "a", "b", "c") == 1
    answer_all(store, "c", {"r1": "no"})
    after = {r["id"]: r for r in result_rows(spec, store)}
    assert after["r1"]["answer"] == "no" and after["r1"]["answer_c"] == "no"
    assert after["r1"]["provenance"]["model"] == "model-a"
    assert after["r1"]["provenance_second"]["model"] == "model-b"
    store.close()
