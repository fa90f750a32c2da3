"""Train the social-turn model (cache.social) and calibrate its cuts.

When to use: ``tiergate train chatter`` (gateway/train_cli.py) after changing the features or
the data; it rewrites cache/artifacts/social.json.gz.

Method:
- Data: every ``data/chatter/*.jsonl`` row ``{text, role, position, social}``, written by
  helpers who saw no code (data/chatter/README.md); the kinds in STATE_KINDS (the user's mood,
  state or surroundings, which the writers called social) are trained as not social. Split by
  the SHA-256 of the lower-cased text: ``DEV_SHARE`` dev, the rest train.
  ``data/cache_eval/social_turns.jsonl`` (written in the sixth session for the rules) is never
  read here: it is the test (``train_files`` prints its figures).
- Model: two L2 logistic regressions (scikit-learn, liblinear), their probabilities averaged:
  one over cache.social.features seen in at least ``MIN_COUNT`` train rows, one over the
  message's embedding (the cache's int8 MiniLM) with its role and place; each one's C chosen by
  5-fold cross-validation on train for log loss.
- Cuts, per role, on dev: the lowest probability at which at most ``target`` of the dev
  messages that are not social, among those cache.chatter would ask the model about
  (``asked``: the rules refuse them for their words only), would be taken for social (never
  below ``MIN_CUT``). The
  shipped weights are the train fit's, so the cuts hold for them; the dev figures are recorded.
- Deterministic: the same data gives the same artifact byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cache.chatter import is_chatter
from cache.social import (
    ARTIFACT,
    Place,
    Role,
    SocialModel,
    features,
    head_inputs,
    write_model,
)

DATA = Path("data/chatter")
TEST = Path("data/cache_eval/social_turns.jsonl")
DEV_SHARE = 0.25
MIN_COUNT = 2
MIN_CUT = 0.5
CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
# What the writers labelled social but says how the user is or what is around them: a mood,
# being tired or busy, the weather, what is happening nearby, being new here, the user's
# English, a fix that worked, relief. Such a turn can change an answer ("hey, had a few beers
# lol" before "Is it okay to drive home now?", "ugh it's so hot today, hi" before "Can I leave
# my dog in the car?": a red-team pass, data/cache_eval/redteam/eleventh_social.jsonl), so it is
# trained as not social, and so are the assistant's replies to it.
STATE_KINDS = frozenset(
    {"mood", "incidental", "small_talk", "weather", "tired", "busy", "worked", "relief"}
    | {"first_time", "new", "elderly", "apology_english", "multi", "free_time", "moment"}
    | {"mood_reply", "weather_reply", "tired_reply", "incidental_reply", "small_talk_reply"}
    | {"glad_it_worked", "worked_reply", "relief_reply", "nervous_reply", "english_reply"}
    | {"first_time_reply"}
)
# social_turns.jsonl has no position: its kinds tell where such a turn is said.
OPENING_KINDS = frozenset({"greeting", "smalltalk", "preamble", "apology"})


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    role: Role
    place: Place
    social: bool


def read_rows(paths: Sequence[Path]) -> list[Row]:
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            role: Role = "assistant" if d["role"] == "assistant" else "user"
            place: Place
            if "position" in d:
                place = "opening" if d["position"] == "opening" else "after_answer"
            else:
                place = "opening" if d.get("kind") in OPENING_KINDS else "after_answer"
            key = (d["text"].strip().lower(), role)
            if key in seen:
                continue
            seen.add(key)
            rows.append(Row(d["text"], role, place, bool(d["social"]) and not state(d)))
    return rows


def state(row: dict[str, Any]) -> bool:
    """Whether a row of data/chatter says how the user is or what is around them
    (STATE_KINDS); the test set's kinds are its own and are read as written."""
    return str(row.get("kind")) in STATE_KINDS and "position" in row


def is_dev(text: str) -> bool:
    digest = hashlib.sha256(text.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < DEV_SHARE


def _matrix(rows: Sequence[Row], index: dict[str, int]) -> Any:
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

    data, cols, ptr = [], [], [0]
    for r in rows:
        seen = sorted({index[f] for f in features(r.text, r.role, r.place) if f in index})
        cols += seen
        data += [1.0] * len(seen)
        ptr.append(len(cols))
    return csr_matrix((data, cols, ptr), shape=(len(rows), len(index)))


def _fit(rows: Sequence[Row], c: float) -> tuple[dict[str, float], float]:
    from sklearn.linear_model import LogisticRegression

    counts = Counter(f for r in rows for f in set(features(r.text, r.role, r.place)))
    names = sorted(f for f, n in counts.items() if n >= MIN_COUNT)
    index = {f: i for i, f in enumerate(names)}
    y = np.array([r.social for r in rows], dtype=int)
    model = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    model.fit(_matrix(rows, index), y)
    coef = model.coef_[0]
    weights = {f: round(float(coef[i]), 5) for f, i in index.items() if abs(coef[i]) >= 1e-4}
    return weights, round(float(model.intercept_[0]), 5)


Embed = Callable[[Sequence[str]], Any]  # texts -> an (n, dim) array of unit vectors


def _sparse(rows: Sequence[Row], weights: dict[str, float], bias: float) -> Any:
    model = SocialModel(weights, bias, {"user": 1.0, "assistant": 1.0}, {})
    return np.array([model.sparse_probability(r.text, r.role, r.place) for r in rows])


def _inputs(rows: Sequence[Row], vectors: Any) -> Any:
    return np.array([head_inputs(v, r.role, r.place) for r, v in zip(rows, vectors, strict=True)])


def _fit_head(rows: Sequence[Row], vectors: Any, c: float) -> tuple[tuple[float, ...], float]:
    from sklearn.linear_model import LogisticRegression

    y = np.array([r.social for r in rows], dtype=int)
    model = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    model.fit(_inputs(rows, vectors), y)
    head = tuple(round(float(w), 5) for w in model.coef_[0])
    return head, round(float(model.intercept_[0]), 5)


def _head_probabilities(rows: Sequence[Row], vectors: Any, head: Any, bias: float) -> Any:
    z = _inputs(rows, vectors) @ np.asarray(head, dtype=np.float32) + bias
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _log_loss(p: Any, rows: Sequence[Row]) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    y = np.array([r.social for r in rows])
    return float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _choose_c(
    train: Sequence[Row], vectors: Any | None
) -> tuple[float, float | None, dict[str, Any]]:
    """C of each regression by 5-fold cross-validated log loss on train."""
    folds = np.arange(len(train)) % 5
    losses: dict[str, Any] = {"sparse": {}, "head": {}}
    for c in CS:
        sparse = head = 0.0
        for k in range(5):
            fit = [r for r, f in zip(train, folds, strict=True) if f != k]
            held = [r for r, f in zip(train, folds, strict=True) if f == k]
            sparse += _log_loss(_sparse(held, *_fit(fit, c)), held)
            if vectors is not None:
                fitted = _fit_head(fit, vectors[folds != k], c)
                head += _log_loss(_head_probabilities(held, vectors[folds == k], *fitted), held)
        losses["sparse"][str(c)] = round(sparse / len(train), 4)
        if vectors is not None:
            losses["head"][str(c)] = round(head / len(train), 4)
    best = min(CS, key=lambda c: losses["sparse"][str(c)])
    best_head = min(CS, key=lambda c: losses["head"][str(c)]) if vectors is not None else None
    return best, best_head, losses


def _cut(p: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], target: float) -> float:
    """The lowest cut at which at most ``target`` of the negatives reach it."""
    negatives = np.sort(p[~y])[::-1]
    allowed = int(np.floor(target * len(negatives)))
    # Every negative above the (allowed+1)-th highest stays under the cut.
    above = negatives[allowed] if allowed < len(negatives) else 0.0
    return float(max(MIN_CUT, np.nextafter(above, 1.0)))


ALWAYS = SocialModel({}, 30.0, {"user": 0.5, "assistant": 0.5}, {})


def asked(row: Row) -> bool:
    """Whether cache.chatter would ask the model about this message: the rules refuse it only
    for its words (a model that says yes to everything passes it, the rules alone do not). A
    user's message after an answer is judged as after a plain one (the loosest place); the
    assistant's only before the first answer (cache.chatter._Walk)."""
    after = row.place == "after_answer" and row.role == "user"
    if row.role == "assistant" and row.place == "after_answer":
        return False
    assistant = row.role == "assistant"
    return is_chatter(
        row.text, assistant=assistant, after_answer=after, plain=after, learned=ALWAYS
    ) and not is_chatter(row.text, assistant=assistant, after_answer=after, plain=after)


def figures(rows: Sequence[Row], model: SocialModel, embed: Embed | None) -> dict[str, Any]:
    """Per role: social messages taken for social (recall) and the others taken for social."""
    vectors = embed([r.text for r in rows]) if model.head and embed and rows else None
    said_all = [
        model.probability(r.text, r.role, r.place, None if vectors is None else vectors[i])
        >= model.cuts[r.role]
        for i, r in enumerate(rows)
    ]
    out: dict[str, Any] = {}
    for role in ("user", "assistant"):
        mine = [(s, r) for s, r in zip(said_all, rows, strict=True) if r.role == role]
        pos = [s for s, r in mine if r.social]
        neg = [s for s, r in mine if not r.social]
        out[role] = {
            "social": len(pos),
            "social_taken": round(sum(pos) / len(pos), 4) if pos else None,
            "other": len(neg),
            "other_taken": round(sum(neg) / len(neg), 4) if neg else None,
        }
    return out


def train(
    paths: Sequence[Path], target: float, embed: Embed | None = None
) -> tuple[SocialModel, dict[str, Any]]:
    """The model (with its embedding regression when ``embed`` is given) and its card."""
    rows = read_rows(paths)
    train_rows = [r for r in rows if not is_dev(r.text)]
    dev_rows = [r for r in rows if is_dev(r.text)]
    train_vectors = np.asarray(embed([r.text for r in train_rows])) if embed else None
    c, c_head, losses = _choose_c(train_rows, train_vectors)
    weights, bias = _fit(train_rows, c)
    head: tuple[float, ...] = ()
    head_bias = 0.0
    if train_vectors is not None and c_head is not None:
        head, head_bias = _fit_head(train_rows, train_vectors, c_head)
    gated = [r for r in dev_rows if asked(r)]  # the messages the model decides
    p = _sparse(gated, weights, bias)
    if head and embed is not None and gated:
        vectors = np.asarray(embed([r.text for r in gated]))
        p = (p + _head_probabilities(gated, vectors, head, head_bias)) / 2
    cuts: dict[str, float] = {}
    for role in ("user", "assistant"):
        mask = np.array([r.role == role for r in gated], dtype=bool)
        y = np.array([r.social for r in gated], dtype=bool)[mask]
        cuts[role] = math.ceil(_cut(p[mask], y, target) * 1e4) / 1e4 if mask.any() else 1.0
    dev_model = SocialModel(weights, bias, cuts, {}, head, head_bias)
    dev = {
        "all": figures(dev_rows, dev_model, embed),
        "asked": figures(gated, dev_model, embed),
    }
    card = {
        "data": [str(p) for p in paths],
        "rows": {"train": len(train_rows), "dev": len(dev_rows), "dev_asked": len(gated)},
        "split": f"sha256(lower(text)) < {DEV_SHARE} of 2^64: dev",
        "C": {"sparse": c, "head": c_head},
        "cv_log_loss": losses,
        "embedding": "all-MiniLM-L6-v2, onnx-int8" if head else None,
        "target_false_social": target,
        "relabelled_not_social": sorted(STATE_KINDS),
        "dev": dev,
        "features": len(weights),
    }
    return SocialModel(weights, bias, cuts, card, head, head_bias), card


def default_embed(models: Path = Path("var/models")) -> Embed:
    """The cache's own embedding model (int8 ONNX), synchronously, for training: one text at a
    time, since the int8 model quantises a batch's activations together, so a text's vector
    would depend on the batch it was embedded in."""
    from cache.embedder import load_embedder

    embedder = load_embedder(backend="onnx-int8", cache_dir=models, lru_size=20_000, threads=2)
    return one_by_one(embedder)


def one_by_one(embedder: Any) -> Embed:
    """``embed`` for an async embedder, each text in a batch of its own."""

    def embed(texts: Sequence[str]) -> Any:
        async def run() -> Any:
            out = [await embedder.embed([t]) for t in texts]
            return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)

        return asyncio.run(run())

    return embed


def train_files(
    out: Path = ARTIFACT, target: float = 0.01, embed: Embed | None = None
) -> dict[str, Any]:
    embed = embed or default_embed()
    paths = sorted(DATA.glob("*.jsonl"))
    model, card = train(paths, target, embed)
    write_model(model, out)
    if TEST.exists():
        test = read_rows([TEST])
        asked_test = [r for r in test if asked(r)]
        card["test"] = {
            "all": figures(test, model, embed),
            "asked": figures(asked_test, model, embed),
        }
    return card
