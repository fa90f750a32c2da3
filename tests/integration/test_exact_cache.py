"""The exact cache over HTTP: hits, streaming hits, directives, tenants, stale answers."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration


def client(gw, key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key or gw.key, max_retries=0, timeout=10)


def ask(gw, prompt: str, *, key=None, stream=False, headers=None, model="fast", **kw):
    messages = [{"role": "user", "content": prompt}]
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=stream, extra_headers=headers or {}, **kw
    )
    return raw


def unique() -> str:
    return f"question {uuid.uuid4().hex}"


def test_second_identical_deterministic_request_is_a_hit(gateway) -> None:
    prompt = unique()
    first = ask(gateway, prompt, temperature=0)
    second = ask(gateway, prompt, temperature=0)
    assert first.headers["x-tiergate-cache"] == "miss"
    assert second.headers["x-tiergate-cache"] == "hit"
    assert "x-tiergate-target" not in second.headers
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


def test_sampled_requests_bypass_the_cache(gateway) -> None:
    prompt = unique()
    assert ask(gateway, prompt).headers["x-tiergate-cache"] == "bypass"
    assert ask(gateway, prompt, temperature=0.7).headers["x-tiergate-cache"] == "bypass"


def test_any_answer_shaping_field_changes_the_key(gateway) -> None:
    prompt = unique()
    ask(gateway, prompt, temperature=0)
    assert ask(gateway, prompt, temperature=0, max_tokens=5).headers["x-tiergate-cache"] == "miss"
    assert ask(gateway, prompt, temperature=0, seed=3).headers["x-tiergate-cache"] == "miss"


def test_streaming_request_is_answered_from_cache_as_sse(gateway) -> None:
    prompt = unique()
    whole = ask(gateway, prompt, temperature=0).parse().choices[0].message.content
    raw = ask(gateway, prompt, temperature=0, stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-tiergate-cache"] == "hit"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].usage is not None


def test_a_streamed_answer_is_stored_for_the_next_request(gateway) -> None:
    prompt = unique()
    streamed = list(ask(gateway, prompt, temperature=0, stream=True).parse())
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    import time

    time.sleep(0.2)  # the write happens after the stream, off the response path
    again = ask(gateway, prompt, temperature=0)
    assert again.headers["x-tiergate-cache"] == "hit"
    assert again.parse().choices[0].message.content == text


def test_cache_control_directives(gateway) -> None:
    prompt = unique()
    ask(gateway, prompt, temperature=0, headers={"cache-control": "no-store"})
    assert ask(gateway, prompt, temperature=0).headers["x-tiergate-cache"] == "miss"
    skip = ask(gateway, prompt, temperature=0, headers={"cache-control": "no-cache"})
    assert skip.headers["x-tiergate-cache"] == "miss"
    young = ask(gateway, prompt, temperature=0, headers={"cache-control": "max-age=0"})
    assert young.headers["x-tiergate-cache"] == "miss"


def test_namespaces_are_separate(gateway) -> None:
    prompt = unique()
    ask(gateway, prompt, temperature=0, headers={"x-tiergate-cache-namespace": "a"})
    other = ask(gateway, prompt, temperature=0, headers={"x-tiergate-cache-namespace": "b"})
    assert other.headers["x-tiergate-cache"] == "miss"


def test_tenants_never_see_each_others_answers(gateway) -> None:
    prompt = unique()
    ask(gateway, prompt, temperature=0)
    theirs = ask(gateway, prompt, temperature=0, key=gateway.other_team_key)
    assert theirs.headers["x-tiergate-cache"] == "miss"
    assert ask(gateway, prompt, temperature=0).headers["x-tiergate-cache"] == "hit"


def test_stale_answer_when_every_target_fails(gateway) -> None:
    prompt = unique()
    good = ask(gateway, prompt, temperature=0, model="stale-ok").parse()
    faults = f"{gateway.sim_url}/_sim/faults"
    httpx.post(faults, json={"model": "sim-stale", "fault": "503"}).raise_for_status()
    try:
        stale = ask(
            gateway, prompt, temperature=0, model="stale-ok", headers={"cache-control": "no-cache"}
        )
        assert stale.headers["x-tiergate-cache"] == "stale"
        assert stale.parse().choices[0].message.content == good.choices[0].message.content
        with pytest.raises(openai.APIStatusError) as info:
            ask(gateway, unique(), temperature=0, model="stale-ok")
        assert info.value.status_code == 503
    finally:
        httpx.delete(faults, params={"model": "sim-stale"})


def test_embeddings_are_cached(gateway) -> None:
    c = client(gateway)
    text = unique()
    first = c.embeddings.with_raw_response.create(model="embed", input=[text])
    second = c.embeddings.with_raw_response.create(model="embed", input=[text])
    assert (first.headers["x-tiergate-cache"], second.headers["x-tiergate-cache"]) == (
        "miss",
        "hit",
    )
    assert first.parse().data[0].embedding == second.parse().data[0].embedding


def test_admin_purge_by_namespace(gateway) -> None:
    prompt = unique()
    ns = {"x-tiergate-cache-namespace": f"purge-{uuid.uuid4().hex[:6]}"}
    ask(gateway, prompt, temperature=0, headers=ns)
    assert ask(gateway, prompt, temperature=0, headers=ns).headers["x-tiergate-cache"] == "hit"
    purged = httpx.post(
        f"{gateway.root}/admin/cache/purge",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        json={"namespace": ns["x-tiergate-cache-namespace"]},
    )
    assert purged.status_code == 200 and purged.json()["purged"] == 1
    assert ask(gateway, prompt, temperature=0, headers=ns).headers["x-tiergate-cache"] == "miss"
