"""The semantic cache over HTTP: a real gateway with the real model (int8 ONNX export of
all-MiniLM-L6-v2), the embedded index, and the official openai SDK as the client.

Every test uses its own cache namespace (``x-tiergate-cache-namespace``), so tests never see each
other's entries; probes that are expected to miss send ``Cache-Control: no-store`` so they do not
become entries themselves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import (
    ADMIN_KEY,
    KEY,
    OTHER_TEAM_KEY,
    ROOT,
    free_port,
    key_hash,
    sdk_client,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration
PARAPHRASES = ("How do I reset my password?", "How can I reset my password?")


def rules(sim_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    return f"""
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "{sim}"}}
aliases:
  faq:
    targets: [ok]
    semantic_cache: {{enabled: true}}
  bounded:
    targets: [ok]
    semantic_cache: {{enabled: true, verify_sample: 1.0, max_false_hit_rate: 0.05}}
  plain: {{targets: [ok]}}
keys:
  - {{id: a, team: team-a, sha256: {key_hash(KEY)}}}
  - {{id: b, team: team-b, sha256: {key_hash(OTHER_TEAM_KEY)}}}
admin:
  key_sha256: {key_hash(ADMIN_KEY)}
"""


@dataclass
class Running:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX export, made once here so each gateway start only loads it."""
    from cache.embedder import load_embedder

    models = tmp_path_factory.mktemp("models")
    embedder = load_embedder(backend="onnx-int8", cache_dir=models)
    asyncio.run(embedder.aclose())
    return models


def start(rules_path: Path, data: Path, models: Path, log: Path) -> Running:
    port = free_port()
    env = dict(
        os.environ,
        GATEWAY_PORT=str(port),
        GATEWAY_RULES=str(rules_path),
        GATEWAY_DATA_DIR=str(data),
        GATEWAY_MODELS_DIR=str(models),
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc, timeout_s=120)
    return Running(port, proc, log)


@pytest.fixture(scope="module")
def semantic_gw(
    sim_port: int, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    work = tmp_path_factory.mktemp("semantic")
    path = work / "rules.yaml"
    path.write_text(rules(sim_port))
    running = start(path, work / "data", models_dir, work / "gateway.log")
    try:
        yield running
    finally:
        stop(running.proc)


def ask(
    gw: Running,
    prompt: str | list[dict[str, Any]],
    ns: str,
    *,
    key: str = KEY,
    model: str = "faq",
    stream: bool = False,
    store: bool = True,
    **kw: Any,
) -> Any:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    headers = {"x-tiergate-cache-namespace": ns}
    if not store:
        headers["cache-control"] = "no-store"
    kw.setdefault("temperature", 0)
    return sdk_client(gw.base_url, key, timeout=20).chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=stream, extra_headers=headers, **kw
    )


def text(raw: Any) -> str:
    return str(raw.parse().choices[0].message.content)


def filled(gw: Running, prompt: str | list[dict[str, Any]], ns: str, **kw: Any) -> str:
    """Ask once (a miss that is stored); wait until the entry is searchable."""
    first = ask(gw, prompt, ns, **kw)
    assert first.headers["x-tiergate-cache"] == "miss"
    time.sleep(0.3)  # the write runs after the answer is sent
    return text(first)


def namespace() -> str:
    return uuid.uuid4().hex


def test_the_cross_encoder_decides_by_default(semantic_gw: Running) -> None:
    logged = semantic_gw.log.read_text()
    assert "semantic cache: the cross-encoder weighed with the trees decide hits" in logged


def test_a_paraphrase_is_answered_from_the_cache(semantic_gw: Running) -> None:
    ns = namespace()
    answer = filled(semantic_gw, PARAPHRASES[0], ns)
    second = ask(semantic_gw, PARAPHRASES[1], ns)
    assert second.headers["x-tiergate-cache"] == "semantic_hit"
    assert float(second.headers["x-tiergate-similarity"]) >= 0.9
    assert "x-tiergate-target" not in second.headers  # no upstream call
    assert text(second) == answer
    fresh = ask(semantic_gw, PARAPHRASES[1], namespace(), store=False)
    assert text(fresh) != answer  # what the upstream says to the paraphrase itself


def test_a_streaming_paraphrase_gets_the_cached_answer_as_sse(semantic_gw: Running) -> None:
    ns = namespace()
    answer = filled(semantic_gw, PARAPHRASES[0], ns)
    raw = ask(semantic_gw, PARAPHRASES[1], ns, stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-tiergate-cache"] == "semantic_hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert chunks[-1].usage is not None


def test_a_bounded_alias_verifies_its_hits_and_shows_its_learned_cut(
    semantic_gw: Running,
) -> None:
    ns = namespace()
    filled(semantic_gw, PARAPHRASES[0], ns, model="bounded")
    hit = ask(semantic_gw, PARAPHRASES[1], ns, model="bounded")
    assert hit.headers["x-tiergate-cache"] == "semantic_hit"  # served at once, checked after
    root = semantic_gw.base_url.removesuffix("/v1")
    deadline, metrics = time.monotonic() + 10, ""
    while time.monotonic() < deadline and 'verified_total{alias="bounded"' not in metrics:
        time.sleep(0.2)
        metrics = httpx.get(f"{root}/metrics").text
    assert 'tiergate_semantic_verified_total{alias="bounded"' in metrics
    cut = [line for line in metrics.splitlines() if line.startswith("tiergate_semantic_cut{")]
    # one sample moves nothing: the calibrated cut of the shipped cross-encoder
    assert cut == ['tiergate_semantic_cut{alias="bounded"} 0.89']


@pytest.mark.parametrize(
    ("stored", "probe"),
    [
        ("Cancel my subscription", "Don't cancel my subscription"),
        ("Is 200 mg of ibuprofen safe for adults?", "Is 800 mg of ibuprofen safe for adults?"),
        ("What are the VAT rules in the EU?", "What are the VAT rules in the US?"),
        ("Book a flight from Paris to Rome", "Book a flight from Rome to Paris"),
    ],
)
def test_near_miss_traps_go_upstream(semantic_gw: Running, stored: str, probe: str) -> None:
    ns = namespace()
    answer = filled(semantic_gw, stored, ns)
    raw = ask(semantic_gw, probe, ns, store=False)
    assert raw.headers["x-tiergate-cache"] == "miss"
    assert raw.headers["x-tiergate-target"] == "ok"
    assert text(raw) != answer


def test_a_repeat_with_a_typo_is_found_and_a_rare_word_is_not_corrected_into_another(
    semantic_gw: Running,
) -> None:
    ns = namespace()
    answer = filled(semantic_gw, "How many calories are in a banana?", ns)
    typo = ask(semantic_gw, "how many calories are in a bannana", ns, store=False)
    assert typo.headers["x-tiergate-cache"] == "semantic_hit"  # searched as "banana"
    assert text(typo) == answer
    filled(semantic_gw, "How do I use request in Rust?", ns)
    crate = ask(semantic_gw, "How do I use reqwest in Rust?", ns, store=False)
    assert crate.headers["x-tiergate-cache"] == "miss"  # judged as typed: another word


def test_other_tenants_never_see_the_answer(semantic_gw: Running) -> None:
    ns = namespace()
    filled(semantic_gw, PARAPHRASES[0], ns)
    for prompt in PARAPHRASES:  # near-identical and identical
        raw = ask(semantic_gw, prompt, ns, key=OTHER_TEAM_KEY, store=False)
        assert raw.headers["x-tiergate-cache"] == "miss"


def test_a_follow_up_hits_only_with_the_same_context(semantic_gw: Running) -> None:
    ns = namespace()
    france = [
        {"role": "user", "content": "What was the GDP of France in 2022?"},
        {"role": "assistant", "content": "About 2.8 trillion US dollars."},
        {"role": "user", "content": "And what about in 2023?"},
    ]
    answer = filled(semantic_gw, france, ns)
    spain = [
        {"role": "user", "content": "What was the population of Spain in 2022?"},
        {"role": "assistant", "content": "About 47.8 million people."},
        {"role": "user", "content": "And what about in 2023?"},
    ]
    raw = ask(semantic_gw, spain, ns, store=False)
    assert raw.headers["x-tiergate-cache"] == "miss"
    assert text(raw) != answer
    chatter = [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello!"}]
    later = ask(semantic_gw, [*chatter, *france], ns)  # earlier chatter: not an exact repeat
    assert later.headers["x-tiergate-cache"] == "semantic_hit"
    assert text(later) == answer


def test_a_follow_up_to_a_follow_up_needs_the_same_first_question(semantic_gw: Running) -> None:
    ns = namespace()

    def chain(first: str) -> list[dict[str, Any]]:
        turns = [first, "Here it is.", "Can you expand on that?", "Sure.", "What are the risks?"]
        roles = ("user", "assistant")
        return [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]

    answer = filled(semantic_gw, chain("How do I invest in index funds?"), ns)
    other = ask(semantic_gw, chain("How do I start rock climbing?"), ns, store=False)
    assert other.headers["x-tiergate-cache"] == "miss"
    assert text(other) != answer
    chatter = [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi!"}]
    same = ask(semantic_gw, [*chatter, *chain("How do I invest in index funds?")], ns)
    assert same.headers["x-tiergate-cache"] == "semantic_hit"
    assert text(same) == answer


def test_answer_shaping_fields_and_sampling_are_part_of_the_scope(semantic_gw: Running) -> None:
    ns = namespace()
    filled(semantic_gw, PARAPHRASES[0], ns)
    other_system = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": PARAPHRASES[1]},
    ]
    assert ask(semantic_gw, other_system, ns, store=False).headers["x-tiergate-cache"] == "miss"
    capped = ask(semantic_gw, PARAPHRASES[1], ns, max_tokens=7, store=False)
    assert capped.headers["x-tiergate-cache"] == "miss"
    sampled = ask(semantic_gw, PARAPHRASES[1], ns, temperature=0.8)
    assert sampled.headers["x-tiergate-cache"] == "bypass"
    off = ask(semantic_gw, PARAPHRASES[1], ns, model="plain", store=False)
    assert off.headers["x-tiergate-cache"] == "miss"  # the alias without a semantic cache


def test_cache_control_no_cache_skips_the_lookup(semantic_gw: Running) -> None:
    ns = namespace()
    filled(semantic_gw, PARAPHRASES[0], ns)
    client = openai.OpenAI(base_url=semantic_gw.base_url, api_key=KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="faq",
        messages=[{"role": "user", "content": PARAPHRASES[1]}],
        temperature=0,
        extra_headers={"x-tiergate-cache-namespace": ns, "cache-control": "no-cache, no-store"},
    )
    assert raw.headers["x-tiergate-cache"] == "miss"


def test_admin_purge_drops_semantic_entries(semantic_gw: Running) -> None:
    ns = namespace()
    filled(semantic_gw, PARAPHRASES[0], ns)
    reply = httpx.post(
        f"http://127.0.0.1:{semantic_gw.port}/admin/cache/purge",
        json={"tenant": "team-a", "namespace": ns},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert reply.status_code == 200
    assert reply.json()["semantic_purged"] == 1
    assert ask(semantic_gw, PARAPHRASES[1], ns, store=False).headers["x-tiergate-cache"] == "miss"


def test_entries_survive_a_restart(
    sim_port: int, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("restart")
    path = work / "rules.yaml"
    path.write_text(rules(sim_port))
    ns = namespace()
    first = start(path, work / "data", models_dir, work / "gateway.log")
    try:
        answer = filled(first, PARAPHRASES[0], ns)
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.proc.wait(timeout=20)
    second = start(path, work / "data", models_dir, work / "gateway.log")
    try:
        raw = ask(second, PARAPHRASES[1], ns)
        assert raw.headers["x-tiergate-cache"] == "semantic_hit"
        assert text(raw) == answer
    finally:
        stop(second.proc)


def test_a_reload_can_turn_the_semantic_cache_on(
    sim_port: int, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("reload")
    path = work / "rules.yaml"
    path.write_text(rules(sim_port).replace("semantic_cache: {enabled: true}", "description: x"))
    gw = start(path, work / "data", models_dir, work / "gateway.log")
    try:
        ns = namespace()
        ask(gw, PARAPHRASES[0], ns)
        assert ask(gw, PARAPHRASES[1], ns, store=False).headers["x-tiergate-cache"] == "miss"
        path.write_text(rules(sim_port))
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "reloaded rules" not in gw.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "reloaded rules" in gw.log.read_text()
        ns2 = namespace()
        answer = filled(gw, PARAPHRASES[0], ns2)
        raw = ask(gw, PARAPHRASES[1], ns2)
        assert raw.headers["x-tiergate-cache"] == "semantic_hit"
        assert text(raw) == answer
    finally:
        stop(gw.proc)
