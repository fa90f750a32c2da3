"""``tiergate eval cache``: measure the semantic cache's hit rate and false hits on labeled pairs.

Each line of the pairs file is ``{"a": ..., "b": ..., "same": bool, "category": optional}``;
``a`` and ``b`` are a string (one user message) or a list of chat messages. For every pair a
fresh cache is filled with ``a`` (its answer: a unique marker) through the real cache code
(embedder, scope, guards, store) and ``b`` is looked up. Printed, per category and overall:
should-hit served (share of ``same`` pairs answered from the cache), wrong-hit rate (share of
not-``same`` pairs answered from it) and the precision of served hits; the last line is one JSON
object with the overall figures. ``--sweep`` also prints the curve over thresholds.

``split`` (``train``, ``dev`` or ``test``) reads a generated development set instead of a file
(``--pairs quora|traps|multiturn``, gateway.eval.devsets); the figures in docs/caching.md are
on ``test``, which no training or calibration ever reads. With the learned verifier (default)
a pair's score is the verifier's probability and the threshold its calibrated cut; ``--sweep``
sweeps that cut.

``shared=True`` is GPTCache's protocol instead: one cache holds every ``a``, every ``b`` is
looked up in it, and a hit is right only when it returns its own pair's ``a``.

Every pair is looked up once with a low floor; the similarity of the best guard-approved entry
then says whether it would be served at any threshold, so the curve costs no extra lookups.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cache.cross_encoder import CrossEncoder, load_cross_encoder
from cache.embedder import Embedder, load_embedder
from cache.policy import Backend, SemanticCachePolicy
from cache.semantic import Answer, Key, Request, SemanticLibrary
from cache.vectors import InProcessIndex
from cache.verifier import Verifier, load_verifier
from gateway.eval.embedding_store import DiskCachedEmbedder, embeddings_file

SWEEP = [round(0.70 + 0.01 * i, 2) for i in range(30)]
CUT_SWEEP = [round(0.05 * i, 2) for i in range(1, 18)] + [0.9, 0.92, 0.94, 0.95, 0.96, 0.97]
CUT_SWEEP += [0.98, 0.985, 0.99, 0.995]
PREWARM_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Pair:
    a: str | list[dict[str, Any]]
    b: str | list[dict[str, Any]]
    same: bool
    category: str


@dataclass(slots=True)
class Outcome:
    pair: Pair
    score: float | None = None  # similarity of the entry that would be served (any threshold)
    own: bool = False  # that entry is this pair's own ``a``
    why_not: str = ""  # not cacheable, or the guards that vetoed


@dataclass(slots=True)
class Figures:
    pairs: int = 0
    same: int = 0
    served_same: int = 0
    different: int = 0
    served_different: int = 0
    served: int = 0
    right: int = 0
    vetoes: dict[str, int] = field(default_factory=dict)

    def add(self, o: Outcome, threshold: float) -> None:
        served = o.score is not None and o.score >= threshold
        self.pairs += 1
        self.same += o.pair.same
        self.different += not o.pair.same
        if served:
            self.served += 1
            self.served_same += o.pair.same and o.own
            self.served_different += not o.pair.same
            self.right += o.pair.same and o.own
        elif o.why_not:
            for reason in o.why_not.split(","):
                self.vetoes[reason] = self.vetoes.get(reason, 0) + 1

    @property
    def should_hit_served(self) -> float:
        return self.served_same / self.same if self.same else 0.0

    @property
    def wrong_hit_rate(self) -> float:
        return self.served_different / self.different if self.different else 0.0

    @property
    def precision(self) -> float:
        return self.right / self.served if self.served else 1.0


def load_pairs(source: str, limit: int | None = None, split: str | None = None) -> list[Pair]:
    """A JSONL file of pairs, the name of a shared set converted on the fly, or (with
    ``split``) a generated development set."""
    from gateway.eval.convert import SETS, convert

    rows: Iterable[dict[str, Any]]
    if split is not None:
        from gateway.eval.devsets import build

        rows = build(source, split)
    elif source in SETS:
        rows = convert(source)
    else:
        rows = (orjson.loads(line) for line in Path(source).read_bytes().splitlines() if line)
    pairs: list[Pair] = []
    for row in rows:
        if limit is not None and len(pairs) >= limit:
            break
        pairs.append(Pair(row["a"], row["b"], bool(row["same"]), str(row.get("category") or "-")))
    return pairs


def as_request(side: str | list[dict[str, Any]]) -> Request:
    messages = [{"role": "user", "content": side}] if isinstance(side, str) else side
    return Request("eval", "eval", "eval", messages, {"temperature": 0})


def marker(i: int) -> bytes:
    return orjson.dumps({"marker": i})


async def evaluate(
    pairs: Sequence[Pair],
    policy: SemanticCachePolicy,
    embedder: Embedder,
    shared: bool,
    floor: float,
    verifier: Verifier | None = None,
    cut: float | None = None,
    cross_encoder: CrossEncoder | None = None,
) -> list[Outcome]:
    keyer = SemanticLibrary(embedder, InProcessIndex(embedder.dim, 1))
    keys = [(keyer.key(as_request(p.a), policy), keyer.key(as_request(p.b), policy)) for p in pairs]
    texts = list(
        dict.fromkeys(
            t for ka, kb in keys for k in (ka, kb) if isinstance(k, Key) for t in k.embedded
        )
    )
    for i in range(0, len(texts), PREWARM_CHUNK):  # fills the embedder's LRU in big batches
        await embedder.embed(texts[i : i + PREWARM_CHUNK])
    outcomes = [Outcome(p) for p in pairs]
    store = InProcessIndex(embedder.dim, max_entries=len(pairs) + 1, ttl_s=policy.ttl_s)
    library = SemanticLibrary(embedder, store, verifier=verifier, cross_encoder=cross_encoder)
    owner: dict[str, int] = {}  # shared mode: entry text -> first pair that stored it
    if shared:
        for i, (ka, _) in enumerate(keys):
            if isinstance(ka, Key) and ka.text not in owner:
                owner[ka.text] = i
                await _fill(library, ka, policy, i)
    for i, (ka, kb) in enumerate(keys):
        out = outcomes[i]
        if isinstance(ka, str) or isinstance(kb, str):
            out.why_not = f"uncacheable:{ka if isinstance(ka, str) else kb}"
            continue
        if not shared:
            store = InProcessIndex(embedder.dim, 4, policy.ttl_s)
            library = SemanticLibrary(
                embedder, store, verifier=verifier, cross_encoder=cross_encoder
            )
            await _fill(library, ka, policy, i)
        look = await library.lookup(kb, policy, floor=floor, cut=cut)
        out.why_not = ",".join(look.vetoes)
        if look.hit is not None:
            out.score = look.hit.score if look.confidence is None else look.confidence
            j = int(orjson.loads(str(look.hit.payload["body"]))["marker"])
            out.own = j == i or (isinstance(pairs[j].a, str) and pairs[j].a == pairs[i].a)
    return outcomes


async def _fill(library: SemanticLibrary, key: Key, policy: SemanticCachePolicy, i: int) -> None:
    look = await library.lookup(key, policy)  # what the stage does first: a miss
    await library.put(key, look.vector, Answer(marker(i), None, None), look.context_vector)


def tally(outcomes: Sequence[Outcome], threshold: float) -> tuple[Figures, dict[str, Figures]]:
    overall, per = Figures(), defaultdict[str, Figures](Figures)
    for o in outcomes:
        overall.add(o, threshold)
        per[o.pair.category].add(o, threshold)
    return overall, dict(sorted(per.items()))


def _row(name: str, f: Figures) -> str:
    same = f"{f.should_hit_served:6.1%} of {f.same:<5}" if f.same else " " * 15
    diff = f"{f.wrong_hit_rate:6.1%} of {f.different:<5}" if f.different else " " * 15
    return f"{name:<28} {f.pairs:>6}  {same}  {diff}  {f.precision:7.2%}"


def report(
    outcomes: Sequence[Outcome],
    threshold: float,
    sweep: bool,
    out: Any,
    points: Sequence[float] = SWEEP,
    errors: bool = False,
) -> dict[str, Any]:
    """The per-category table and, last, one JSON line; with ``errors`` first each pair served
    wrongly or missed (a conversation as its last message), to read what to fix."""
    if errors:
        for line in error_lines(outcomes, threshold):
            print(line, file=out)
        print(file=out)
    if sweep:
        print("threshold  should-hit served  wrong-hit rate  precision", file=out)
        for t in sorted({*points, threshold}):
            f, _ = tally(outcomes, t)
            mark = "  <- chosen" if t == threshold else ""
            rates = f"{f.should_hit_served:17.1%}  {f.wrong_hit_rate:14.1%}  {f.precision:9.2%}"
            line = f"{t:9.3f}  {rates}"
            print(line + mark, file=out)
        print(file=out)
    overall, per = tally(outcomes, threshold)
    print(f"threshold {threshold:.4g}", file=out)
    print(
        f"{'category':<28} {'pairs':>6}  {'should-hit served':<15}  "
        f"{'wrong-hit rate':<15}  precision",
        file=out,
    )
    for name, f in per.items():
        print(_row(name, f), file=out)
    print(_row("overall", overall), file=out)
    if overall.vetoes:
        vetoes = ", ".join(
            f"{k} {v}" for k, v in sorted(overall.vetoes.items(), key=lambda kv: -kv[1])
        )
        print(f"not served because of: {vetoes}", file=out)
    result = {
        "pairs": overall.pairs,
        "should_hit_served": round(overall.should_hit_served, 4),
        "wrong_hit_rate": round(overall.wrong_hit_rate, 4),
        "precision": round(overall.precision, 4),
    }
    print(json.dumps(result), file=out)
    return result


def error_lines(outcomes: Sequence[Outcome], threshold: float) -> list[str]:
    """ "wrong" for a must-not-hit pair served, "missed" for a should-hit pair not served (or
    served another pair's entry), with the category, the score or the vetoes, and both sides."""
    lines = []
    for o in outcomes:
        served = o.score is not None and o.score >= threshold
        if (o.pair.same and served and o.own) or (not o.pair.same and not served):
            continue
        kind = "wrong" if served else "missed"
        why = f"{o.score:.3f}" if served and o.score is not None else (o.why_not or "no-match")
        a, b = (_last(side) for side in (o.pair.a, o.pair.b))
        lines.append(f"{kind:<6} {o.pair.category:<20} {why:<12} {a!r} | {b!r}")
    return lines


def _last(side: str | list[dict[str, Any]]) -> str:
    return side if isinstance(side, str) else str(side[-1].get("content", "")) if side else ""


def policy_from_rules(rules: str | None, alias: str | None = None) -> SemanticCachePolicy:
    """The policy to evaluate: an alias's (``alias``), else the rules' top-level one, always
    enabled (the evaluation is how an operator decides whether to enable it)."""
    if rules is None:
        return SemanticCachePolicy(enabled=True)
    from gateway.rules import load_rules

    loaded = load_rules(rules)
    policy = loaded.semantic_cache
    if alias is not None:
        if alias not in loaded.aliases:
            raise ValueError(f"no alias named {alias!r} in {rules}")
        policy = loaded.aliases[alias].semantic_cache or policy
    return policy.model_copy(update={"enabled": True})


def sweep_points(policy: SemanticCachePolicy) -> list[float]:
    """The thresholds a sweep covers: the verifier's probability cuts, else cosine ones."""
    return CUT_SWEEP if policy.verifier else SWEEP


def score_pairs(
    loaded: Sequence[Pair],
    policy: SemanticCachePolicy,
    threshold: float | None,
    sweep: bool,
    *,
    shared: bool = False,
    backend: Backend = "onnx-int8",
    embedder: Embedder | None = None,
    lowest: float | None = None,
) -> tuple[list[Outcome], float]:
    """Every pair through the real cache, and the threshold to judge them at (``threshold``, else
    the cross-encoder's, the trees' or the cosine one). Each pair's score is seen down to
    ``lowest`` (default: the lowest swept point with ``sweep``, else the chosen threshold); the
    embeddings are kept on disk unless ``embedder`` is given."""
    model = load_verifier() if policy.verifier else None
    ce = load_cross_encoder() if policy.verifier and policy.cross_encoder else None
    if ce is not None:
        chosen = policy.verifier_threshold or ce.threshold if threshold is None else threshold
    elif model is not None:
        chosen = policy.verifier_threshold or model.threshold if threshold is None else threshold
    else:
        chosen = policy.threshold if threshold is None else threshold
    if lowest is not None:
        floor = lowest
    else:
        floor = min([*sweep_points(policy), chosen]) if sweep else chosen
    if embedder is None:
        from gateway.settings import Settings

        models = Settings().model_cache
        size = 4 * len(loaded) + 16
        inner = load_embedder(backend=backend, cache_dir=models, lru_size=size, threads=2)
        embedder = DiskCachedEmbedder(inner, embeddings_file(models, backend))
    cut = floor if model is not None else None
    outcomes = asyncio.run(
        evaluate(loaded, policy, embedder, shared, floor if model is None else 0.0, model, cut, ce)
    )
    if isinstance(embedder, DiskCachedEmbedder):
        embedder.save()
    return outcomes, chosen


def run_cache_eval(
    pairs: str,
    rules: str | None,
    threshold: float | None,
    sweep: bool,
    limit: int | None,
    *,
    shared: bool = False,
    guards: bool = True,
    conversation: str | None = None,
    backend: Backend = "onnx-int8",
    embedder: Embedder | None = None,
    alias: str | None = None,
    split: str | None = None,
    verifier: bool = True,
    cross_encoder: bool = True,
    follow_up_chain: bool = True,
    chatter_leads: bool = True,
    spelling: bool = True,
    errors: bool = False,
) -> int:
    """The command: print the figures; 0 on success, 2 when the pairs cannot be read."""
    try:
        policy = policy_from_rules(rules, alias)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    update: dict[str, Any] = {"guards": guards, "verifier": verifier}
    update["cross_encoder"] = cross_encoder
    if not follow_up_chain:
        update["follow_up_chain"] = False
    if not chatter_leads:
        update["chatter_leads"] = False
    if not spelling:
        update["spelling"] = False
    if conversation is not None:
        update["conversation"] = conversation
    policy = policy.model_copy(update=update)
    try:
        loaded = load_pairs(pairs, limit, split)
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot read pairs from {pairs}: {exc}", file=sys.stderr)
        return 2
    outcomes, chosen = score_pairs(
        loaded, policy, threshold, sweep, shared=shared, backend=backend, embedder=embedder
    )
    report(outcomes, chosen, sweep, sys.stdout, sweep_points(policy), errors=errors)
    return 0
