"""Semantic batching: prompt building, id matching, skips and malformed replies; the sim's side."""

from __future__ import annotations

import orjson
import pytest

from gateway.batch.prompts import Item, build_prompt, parse_reply, record_text
from gateway.batch.spec import JobInvalid, JobSpec, load_job, template_hash
from gateway.sim.answers import sample_for_schema
from gateway.sim.batch_answers import batch_reply, expected_code


def spec(**fields: object) -> JobSpec:
    base: dict[str, object] = {"input": "x.jsonl", "labels": ["positive", "negative", "neutral"]}
    return JobSpec.model_validate(base | fields)


ITEMS = [Item("a1", "great service"), Item("b2", "awful wait"), Item("c3", "it was fine")]


def test_labels_get_short_codes_resolved_locally() -> None:
    s = spec(labels=[{"name": "yes", "code": "B"}, "no", "maybe"])
    assert s.codes() == ["B", "A", "C"]
    assert s.code_map() == {"B": "yes", "A": "no", "C": "maybe"}


def test_prompt_lists_every_record_with_its_id_and_the_codes() -> None:
    prompt = build_prompt(spec(), ITEMS)
    assert "A = positive" in prompt and "C = neutral" in prompt
    assert "[id=a1] great service\n[id=b2] awful wait\n[id=c3] it was fine" in prompt


def test_answers_are_matched_by_id_not_position() -> None:
    reply = '{"c3": "C", "a1": "A", "b2": "b"}'
    parsed = parse_reply(spec(), ITEMS, reply)
    assert parsed.answers == {"a1": "positive", "b2": "negative", "c3": "neutral"}
    assert parsed.skipped == () and not parsed.malformed


def test_missing_unknown_or_unfit_ids_are_skips() -> None:
    reply = 'Sure! ```json\n{"a1": "A", "b2x": "B", "c3": "Z", "zz": "A"}\n```'
    parsed = parse_reply(spec(), ITEMS, reply)
    assert parsed.answers == {"a1": "positive"}
    assert parsed.skipped == ("b2", "c3")
    assert not parsed.malformed


def test_a_reply_that_is_not_a_json_object_is_malformed() -> None:
    for reply in ('{"a1": ', "no idea", "[1, 2]", None):
        parsed = parse_reply(spec(), ITEMS, reply)
        assert parsed.malformed and parsed.skipped == ("a1", "b2", "c3")


def test_extract_answers_must_be_objects() -> None:
    s = spec(task="extract", labels=[], schema={"type": "object"})
    parsed = parse_reply(s, ITEMS[:2], '{"a1": {"city": "Oslo"}, "b2": "Oslo"}')
    assert parsed.answers == {"a1": {"city": "Oslo"}} and parsed.skipped == ("b2",)


def test_record_text_joins_the_prompt_fields() -> None:
    assert record_text({"id": 1, "text": "a\n  b"}, spec()) == "a b"
    s = spec(fields=["title", "body"])
    assert record_text({"id": 1, "title": "T", "body": "B"}, s) == "title: T | body: B"


def test_job_validation_names_the_problem(tmp_path: object) -> None:
    with pytest.raises(JobInvalid, match="at least two labels"):
        load_job(None, {"input": "x.jsonl", "labels": ["one"]})
    with pytest.raises(JobInvalid, match="exactly one of input"):
        load_job(None, {"labels": ["a", "b"]})
    flags = {"input": "x.jsonl", "labels": ["a", "b"], "tpm": 1000}
    assert load_job(None, flags).limits.tpm == 1000


def test_template_hash_changes_with_the_labels() -> None:
    assert template_hash(spec()) != template_hash(spec(labels=["positive", "negative"]))
    assert template_hash(spec()) == template_hash(spec(alias="other"))


def test_the_sim_answers_a_batched_prompt_by_id() -> None:
    s = spec()
    prompt = build_prompt(s, ITEMS)
    reply = batch_reply(0, "m", 12345, prompt, sample_for_schema)
    assert reply is not None
    answer = orjson.loads(reply)
    codes = ("A", "B", "C")
    for item in ITEMS:
        if item.rid in answer:
            assert answer[item.rid] == expected_code(0, "m", item.rid, item.text, codes)
    assert batch_reply(0, "m", 1, "plain question", sample_for_schema) is None


def test_the_sim_leaves_out_and_garbles_a_few_ids_over_many_calls() -> None:
    s = spec()
    items = [Item(f"r{i}", f"text {i}") for i in range(20)]
    prompt = build_prompt(s, items)
    skipped = malformed = 0
    for digest in range(300):
        reply = batch_reply(7, "m", digest, prompt, sample_for_schema)
        assert reply is not None
        parsed = parse_reply(s, items, reply)
        malformed += parsed.malformed
        skipped += 0 if parsed.malformed else len(parsed.skipped)
    assert 0 < malformed < 15
    assert 0 < skipped < 0.1 * 300 * 20
