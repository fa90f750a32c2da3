"""Prompt token counts for reservations: the target's tokenizer, offline, or the estimate."""

from __future__ import annotations

import time

import tiktoken

from gateway.calls import Call, CallKind, Principal
from gateway.governance.tokens import (
    build_counters,
    estimate,
    load_encoding,
    tokenizer_for,
)
from gateway.requests import ChatRequest, EmbeddingsRequest

CJK = "東京で一番おいしいラーメン屋はどこですか。詳しく教えてください。"


def chat(*texts: str) -> Call:
    request = ChatRequest.model_validate(
        {"model": "a", "messages": [{"role": "user", "content": t} for t in texts]}
    )
    return Call(
        request_id="r",
        principal=Principal(key_id="k", team="t", aliases=None),
        kind=CallKind.CHAT,
        alias="a",
        request=request,
        started_ns=time.perf_counter_ns(),
        config_version="v",
        route=None,
    )


def test_model_names_pick_their_encoding() -> None:
    assert tokenizer_for("gpt-4o-mini", "auto") == "o200k_base"
    assert tokenizer_for("openai/gpt-4.1", "auto") == "o200k_base"
    assert tokenizer_for("o3-mini", "auto") == "o200k_base"
    assert tokenizer_for("gpt-4-turbo", "auto") == "cl100k_base"
    assert tokenizer_for("text-embedding-3-small", "auto") == "cl100k_base"
    assert tokenizer_for("anthropic/claude-sonnet", "auto") == "estimate"
    assert tokenizer_for("gpt-4o", "estimate") == "estimate"  # configured wins


def test_the_encoding_loads_offline_and_counts_like_the_provider() -> None:
    encoding = load_encoding("o200k_base")
    assert encoding is not None
    counters = build_counters({"a": ["t"]}, {"t": "o200k_base"})
    call = chat("Say hello.", CJK)
    expected = sum(len(encoding.encode(t)) for t in ("Say hello.", CJK)) + 3 * 2 + 3
    assert counters["a"](call) == expected
    assert isinstance(encoding, tiktoken.Encoding)


def test_text_that_is_not_english_is_not_under_reserved() -> None:
    counters = build_counters({"a": ["t"]}, {"t": "o200k_base"})
    call = chat(CJK)
    assert counters["a"](call) > estimate(call)  # chars / 4 would reserve too little


def test_an_alias_reserves_by_its_largest_tokenizer() -> None:
    counters = build_counters({"a": ["x", "y"]}, {"x": "estimate", "y": "cl100k_base"})
    call = chat(CJK)
    cl100k = build_counters({"a": ["y"]}, {"y": "cl100k_base"})["a"](call)
    assert counters["a"](call) == max(estimate(call), cl100k)


def test_the_estimate_for_embeddings() -> None:
    request = EmbeddingsRequest.model_validate({"model": "e", "input": ["abcd", "abcdefgh"]})
    call = Call(
        request_id="r",
        principal=Principal(key_id="k", team="t", aliases=None),
        kind=CallKind.EMBEDDINGS,
        alias="e",
        request=request,
        started_ns=0,
        config_version="v",
        route=None,
    )
    assert estimate(call) == (1 + 1) + (2 + 1)
