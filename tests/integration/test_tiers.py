"""Tiers end to end: the shipped examples, a real gateway, the sim in quality mode, the openai SDK.

The sim runs with ``routing_rules/sim.yaml``: its cheap models answer the demo dataset's prompts
as the weak model did and ``sim-smart`` as the strong one (``data/sim/quality_demo.jsonl``).
Each example rules file is served as shipped, with only the sim's address changed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.sim.control import SimControl
from gateway.sim.quality import graded
from tests.integration.conftest import ROOT, free_port, sdk_client, stop, wait_for_port

pytestmark = pytest.mark.integration
SIM_CONFIG = "routing_rules/sim.yaml"

EXTRACT_KEY = "tg-example-extract-0123456789abcdef"
HR_KEY = "tg-example-hr-0123456789abcdef"
WEB_KEY = "tg-example-web-0123456789abcdef"
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}


def dataset_rows(task: str | None = None) -> list[dict[str, Any]]:
    lines = (ROOT / "data/sim/quality_demo.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return [r for r in rows if r.get("task") == task]


@pytest.fixture(scope="module")
def quality_sim() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "sim", "--port", str(port), "--config", SIM_CONFIG],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def serve_example(name: str, sim_url: str, work: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """The example as shipped, pointed at this test's sim; artifacts from the repo."""
    text = (ROOT / "routing_rules/examples" / name).read_text()
    text = text.replace("http://127.0.0.1:9100", sim_url)
    text = text.replace("artifact: ../artifacts/", f"artifact: {ROOT}/routing_rules/artifacts/")
    rules = work / name
    rules.write_text(text)
    return serve_example_file(rules, work)


def serve_example_file(rules: Path, work: Path) -> tuple[str, subprocess.Popen[bytes]]:
    name = rules.name
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_RULES": str(rules),
        "GATEWAY_DATA_DIR": str(work / f"data-{name}"),
    }
    with (work / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc, timeout_s=120)
    return f"http://127.0.0.1:{port}/v1", proc


@pytest.fixture(scope="module")
def extraction(quality_sim: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = serve_example("extraction.yaml", quality_sim, tmp_path_factory.mktemp("ex"))
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def hybrid(quality_sim: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = serve_example("hybrid.yaml", quality_sim, tmp_path_factory.mktemp("hy"))
    try:
        yield url
    finally:
        stop(proc)


def extract(url: str, prompt: str, **kw: Any) -> Any:
    return sdk_client(url, EXTRACT_KEY).chat.completions.with_raw_response.create(
        model="extract",
        messages=[{"role": "user", "content": prompt}],
        response_format=SCHEMA,  # type: ignore[arg-type]
        extra_headers={"cache-control": "no-cache"},
        **kw,
    )


def test_extraction_serves_valid_cheap_answers_from_the_cheap_tier(extraction: str) -> None:
    row = next(r for r in dataset_rows("extraction") if r["weak"] == 1)
    raw = extract(extraction, row["prompt"])
    assert raw.headers["x-tiergate-tier"] == "cheap"
    assert "x-tiergate-escalated" not in raw.headers
    assert json.loads(raw.parse().choices[0].message.content) == json.loads(row["weak_response"])


def test_extraction_escalates_an_answer_that_is_not_json(extraction: str) -> None:
    row = next(r for r in dataset_rows("extraction") if "Tom Becker" in r["prompt"])
    raw = extract(extraction, row["prompt"])
    assert raw.headers["x-tiergate-tier"] == "strong"
    assert raw.headers["x-tiergate-escalated"] == "schema"
    assert raw.headers["x-tiergate-target"] == "strong"
    assert json.loads(raw.parse().choices[0].message.content) == {"name": "Tom Becker", "age": 51}


def test_extraction_escalates_json_that_breaks_the_schema(extraction: str) -> None:
    row = next(r for r in dataset_rows("extraction") if "Aiko Tanaka" in r["prompt"])
    assert json.loads(row["weak_response"])["age"] == "twenty-nine"  # valid JSON, wrong type
    raw = extract(extraction, row["prompt"])
    assert raw.headers["x-tiergate-escalated"] == "schema"
    assert json.loads(raw.parse().choices[0].message.content) == {"name": "Aiko Tanaka", "age": 29}


def test_a_streamed_extraction_is_gated_before_its_first_chunk(extraction: str) -> None:
    row = next(r for r in dataset_rows("extraction") if "Lena Fischer" in r["prompt"])
    with sdk_client(extraction, EXTRACT_KEY).chat.completions.with_streaming_response.create(
        model="extract",
        messages=[{"role": "user", "content": row["prompt"]}],
        response_format=SCHEMA,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"cache-control": "no-cache"},
    ) as response:
        assert response.headers["x-tiergate-escalated"] == "schema"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert json.loads(text) == {"name": "Lena Fischer", "age": 45}


def chat(url: str, key: str, prompt: str, model: str = "auto", **kw: Any) -> Any:
    return sdk_client(url, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kw
    )


MATH = "Solve for x: 3x + 7 = 22 and prove the solution is unique."


def test_public_traffic_is_routed_by_its_signals(hybrid: str) -> None:
    easy = chat(hybrid, WEB_KEY, "What are your opening hours?")
    assert easy.headers["x-tiergate-target"] == "local-small"
    hard = chat(hybrid, WEB_KEY, MATH)
    assert hard.headers["x-tiergate-tier"] == "frontier"
    assert hard.headers["x-tiergate-target"] == "frontier"


def test_an_unsure_cheap_answer_is_escalated_on_its_logprobs(hybrid: str) -> None:
    """A dataset prompt the weak model got wrong, where the sim reports low confidence."""
    rows = [r for r in dataset_rows() if "weak_response" in r]
    unsure = next(r for r in rows if graded(r["prompt"], r, "weak").logprob < -0.6)
    sure = next(r for r in rows if graded(r["prompt"], r, "weak").logprob > -0.3)
    for prompt in (unsure["prompt"], sure["prompt"]):
        assert signals_of_text(prompt) == [], "the router must start these on the cheap tier"
    raw = chat(hybrid, WEB_KEY, unsure["prompt"])
    assert raw.headers["x-tiergate-tier"] == "frontier"
    assert raw.headers["x-tiergate-escalated"]
    assert raw.parse().choices[0].message.content == unsure["strong_response"].strip()
    kept = chat(hybrid, WEB_KEY, sure["prompt"])
    assert kept.headers["x-tiergate-tier"] == "local"
    assert "x-tiergate-escalated" not in kept.headers


def signals_of_text(prompt: str) -> list[str]:
    from gateway.requests import ChatRequest
    from gateway.routing.signals import signals_of
    from gateway.rules import RulesSignals

    request = ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    )
    return signals_of(request).fired(RulesSignals())


def test_on_prem_traffic_never_leaves_the_approved_targets(hybrid: str, quality_sim: str) -> None:
    sim = SimControl(quality_sim)
    before = sim_counts(quality_sim)
    hard = chat(hybrid, HR_KEY, MATH)  # the router wants the frontier tier
    assert hard.headers["x-tiergate-target"] == "local-large"
    flagged = chat(
        hybrid, WEB_KEY, MATH, extra_headers={"x-tiergate-data-class": "on_prem"}
    )  # a public key marks one call as sensitive
    assert flagged.headers["x-tiergate-target"] == "local-large"
    # An outage of the small local model: escalation and fallback still stay on-prem.
    asyncio.run(sim.add_fault("503", model="sim-fast"))
    try:
        easy = chat(hybrid, HR_KEY, "What are your opening hours?")
        assert easy.headers["x-tiergate-target"] == "local-large"
        assert easy.headers["x-tiergate-escalated"] == "unavailable"
        asyncio.run(sim.add_fault("503", model="sim-fast-2"))
        with pytest.raises(openai.APIStatusError) as err:
            chat(hybrid, HR_KEY, "What are your opening hours?")
        assert err.value.status_code == 503
        assert err.value.response.headers.get("retry-after")
    finally:
        asyncio.run(sim.clear_faults())
    after = sim_counts(quality_sim)
    assert after.get("sim-smart", 0) == before.get("sim-smart", 0)


def test_no_approved_target_fails_closed(hybrid: str) -> None:
    with pytest.raises(openai.PermissionDeniedError) as err:
        chat(hybrid, HR_KEY, "hello", model="frontier")
    assert err.value.code == "data_class_not_allowed"
    with pytest.raises(openai.BadRequestError, match="Unknown data class"):
        chat(hybrid, WEB_KEY, "hello", extra_headers={"x-tiergate-data-class": "secret"})


def sim_counts(sim_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{sim_url}/_sim/stats", timeout=5) as response:
        counts: dict[str, int] = json.loads(response.read())["by_model"]
    return counts


DEMO_KEY = "tg-demo-local-only-0123456789abcdef"
ADMIN_KEY = "tg-admin-demo-local-only-0123456789abcdef"


@pytest.fixture(scope="module")
def demo(quality_sim: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo rules `make run` serves (routing_rules/default.yaml), on this test's sim."""
    work = tmp_path_factory.mktemp("demo")
    text = (ROOT / "routing_rules/default.yaml").read_text()
    text = text.replace("http://127.0.0.1:9100", quality_sim)
    text = text.replace("artifact: artifacts/", f"artifact: {ROOT}/routing_rules/artifacts/")
    (work / "examples").mkdir()
    (work / "examples/default.yaml").write_text(text)
    url, proc = serve_example_file(work / "examples/default.yaml", work)
    try:
        yield url, work / "default.yaml.log"
    finally:
        stop(proc)


def auto_log_lines(log: Path, expected: int) -> list[dict[str, Any]]:
    """The demo's request log lines for `auto` (written in batches once a second: wait)."""
    for _ in range(50):
        lines = [json.loads(line) for line in log.read_text().splitlines() if '"request"' in line]
        found = [line for line in lines if line.get("alias") == "auto"]
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    return found


def test_the_demo_auto_alias_shows_tier_gates_and_escalations(demo: tuple[str, Path]) -> None:
    url, log = demo
    rows = [r for r in dataset_rows() if "weak_response" in r][:40]
    seen = []
    for row in rows:
        raw = chat(url, DEMO_KEY, row["prompt"], extra_headers={"cache-control": "no-cache"})
        seen.append((raw.headers["x-tiergate-tier"], raw.headers.get("x-tiergate-escalated")))
    assert ("cheap", None) in seen, "answers the gates trust are served from the cheap tier"
    escalated = [reason for tier, reason in seen if reason is not None]
    assert escalated and all(tier == "strong" for tier, r in seen if r is not None)
    requests = auto_log_lines(log, len(rows))
    assert len(requests) == len(rows)
    assert {line["tier"] for line in requests} <= {"cheap", "strong"}
    assert all("route_reason" in line for line in requests)
    assert sum(1 for line in requests if line.get("escalated")) == len(escalated)
    with urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'tiergate_tier_served_total{alias="auto",tier="cheap"}' in metrics
    assert 'tiergate_escalations_total{alias="auto",reason=' in metrics
    assert 'tiergate_router_decisions_total{alias="auto",reason=' in metrics


SUPPORT_KEY = "tg-example-support-0123456789abcdef"


@pytest.fixture(scope="module")
def support(quality_sim: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, proc = serve_example("support_chatbot.yaml", quality_sim, tmp_path_factory.mktemp("sp"))
    try:
        yield url
    finally:
        stop(proc)


def test_support_routes_about_a_fifth_of_questions_to_the_strong_tier(support: str) -> None:
    rows = [r for r in dataset_rows() if "subject" in r]  # MMLU-style questions
    tiers = [
        chat(support, SUPPORT_KEY, r["prompt"], model="support", extra_headers=NO_CACHE).headers[
            "x-tiergate-tier"
        ]
        for r in rows
    ]
    strong = tiers.count("strong") / len(tiers)
    assert 0.05 <= strong <= 0.6, tiers  # 20% start there; unsure answers escalate too
    assert "cheap" in tiers


NO_CACHE = {"cache-control": "no-cache"}


def test_support_falls_back_to_the_second_provider_then_to_stale_answers(
    support: str, quality_sim: str
) -> None:
    sim = SimControl(quality_sim)
    question = "Where can I download my invoices from last year?"
    first = chat(support, SUPPORT_KEY, question, model="support")
    assert first.headers["x-tiergate-tier"] in ("cheap", "strong")
    asyncio.run(sim.add_fault("503", model="sim-fast"))
    try:
        moved = chat(support, SUPPORT_KEY, question, model="support", extra_headers=NO_CACHE)
        assert moved.headers["x-tiergate-target"] in ("cheap-b", "strong")
        assert "cheap-a" in moved.headers.get("x-tiergate-failed", "cheap-a")
        for model in ("sim-fast-2", "sim-smart"):
            asyncio.run(sim.add_fault("503", model=model))
        stale = chat(support, SUPPORT_KEY, question, model="support", extra_headers=NO_CACHE)
        assert stale.headers["x-tiergate-cache"] == "stale"
        last_good = moved.parse().choices[0].message.content  # no-cache still stores it
        assert stale.parse().choices[0].message.content == last_good
    finally:
        asyncio.run(sim.clear_faults())
