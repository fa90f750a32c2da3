"""The cross-encoder hit verifier: one small transformer reads the cached and the asked
question together and says whether they are the same question.

When to use: ``SemanticLibrary.lookup`` asks it about the top live candidate above the cosine
floor (``candidates``), and a follow-up's two contexts, and serves it when the decision
reaches the cut. Each pair is scored alone (its score never depends on what else is scored),
in the model's own thread, off the event loop. Load it once per process with
``load_cross_encoder()``: it returns None (and logs once) when onnxruntime or the artifact is
missing, and the cache then decides with the gradient-boosted trees alone (cache.verifier).

Policy: a bi-encoder cosine plus word features cannot tell a reworded question from a changed
detail well enough (the trees served 22% of true Quora paraphrases at a safe cut); a
cross-encoder attends across the two texts. The model is all-MiniLM-L6-v2's first 3 layers
fine-tuned on the train split (gateway.eval.ce_train), exported as int8 ONNX. The decision is
``sigmoid(tree_weight * logit(trees) + ce_weight * logit(min(model, ce_max)))`` against a cut;
weights, cut and the band under which the model is not run (``band_low``: no dev pair under it
was accepted) are chosen on the dev split for a false-hit target per trap category, and
written beside the model in ``cross_encoder.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("tiergate.cache")

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CE_ARTIFACT = ARTIFACTS / "cross_encoder.onnx"
CE_META = ARTIFACTS / "cross_encoder.json"
CE_MAX = 0.995  # above the highest score seen on dev (0.9945): changes no dev decision
Scores = npt.NDArray[np.float64]
# The model runs here, not on the event loop: a pair takes about 2.3 ms, and 32 lookups at once
# ran their pairs back to back on the loop, stalling every other request (bench.semantic_cache).
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cross-encoder")


@dataclass(frozen=True, slots=True)
class CrossEncoder:
    """The int8 ONNX cross-encoder; ``threshold`` is the dev-calibrated cut on its probability."""

    session: Any
    tokenizer: Any
    threshold: float
    floor: float  # cosine under which a candidate is not scored at all
    candidates: int  # at most this many candidates are scored per lookup
    tree_weight: float = 0.0  # the decision: sigmoid(tree_weight * logit(trees) + ...)
    ce_weight: float = 1.0  # ... + ce_weight * logit(cross-encoder)), calibrated on dev
    ce_max: float = CE_MAX  # the cross-encoder's score is capped here (bounds what it can add)
    band_low: float = 0.0  # the model runs only when the trees' probability is at least this

    @classmethod
    def load(cls, path: Path = CE_ARTIFACT, meta_path: Path | None = CE_META) -> CrossEncoder:
        from cache.embedder import onnx_session, pair_tokenizer

        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path else {}
        if meta and meta.get("kind") != "cross-encoder":
            raise ValueError(f"{meta_path}: not a cross-encoder artifact")
        tokenizer = pair_tokenizer(int(meta.get("max_len", 64)))
        session = onnx_session(path, threads=1)  # one pair at a time: a second thread idles
        return cls(
            session,
            tokenizer,
            float(meta.get("threshold", 0.5)),
            float(meta.get("floor", 0.70)),
            int(meta.get("candidates", 2)),
            float(meta.get("tree_weight", 0.0)),
            float(meta.get("ce_weight", 1.0)),
            float(meta.get("ce_max", CE_MAX)),
            float(meta.get("band_low", 0.0)),
        )

    def worth_scoring(self, tree_p: float | None, cut: float) -> bool:
        """Whether running the model can change the outcome: the trees' probability is inside
        the dev-calibrated band and the highest score the model may give would reach the cut."""
        if tree_p is not None and tree_p < self.band_low:
            return False
        return self.decide(tree_p, 1.0) >= cut

    def decide(self, tree_p: float | None, ce_p: float) -> float:
        """The probability the cut applies to: the cross-encoder's (capped at ``ce_max``),
        weighed with the trees'. ``ce_p`` 1.0 gives the most a candidate can reach."""
        ce_p = min(ce_p, self.ce_max)
        if tree_p is None or self.tree_weight == 0.0:
            return float(combine(0.5, ce_p, 0.0, self.ce_weight))
        return float(combine(tree_p, ce_p, self.tree_weight, self.ce_weight))

    async def score(self, pairs: Sequence[tuple[str, str]]) -> Scores:
        """``score_pairs`` in the model's own thread, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(_POOL, self.score_pairs, pairs)

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> Scores:
        """The probability that each (cached, asked) pair is the same question. Each pair runs
        alone: the int8 model quantises its activations with one scale per batch, and a pair
        scored beside others moved by up to 0.17 (``python -m bench.embedder_batches``)."""
        logits = np.array([self._logit(a, b) for a, b in pairs], dtype=np.float64)
        scores: Scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return scores

    def _logit(self, cached: str, asked: str) -> float:
        enc = self.tokenizer.encode(cached, asked)
        feed = {
            "input_ids": np.asarray([enc.ids], dtype=np.int64),
            "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64),
        }
        return float(np.asarray(self.session.run(None, feed)[0]).reshape(-1)[0])


def combine(tree_p: Any, ce_p: Any, tree_weight: float, ce_weight: float) -> Any:
    """sigmoid(tree_weight * logit(tree_p) + ce_weight * logit(ce_p)), scalars or arrays."""
    t = np.clip(np.asarray(tree_p, dtype=np.float64), 1e-6, 1 - 1e-6)
    c = np.clip(np.asarray(ce_p, dtype=np.float64), 1e-6, 1 - 1e-6)
    z = tree_weight * np.log(t / (1 - t)) + ce_weight * np.log(c / (1 - c))
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def load_cross_encoder(path: Path = CE_ARTIFACT, meta_path: Path = CE_META) -> CrossEncoder | None:
    """The shipped cross-encoder, or None (logged once, here) when it cannot run: the cache then
    decides with the gradient-boosted trees alone."""
    try:
        return CrossEncoder.load(path, meta_path)
    except (ImportError, OSError, ValueError, RuntimeError, KeyError) as exc:
        log.warning(
            "cross-encoder cache verifier unavailable (%s); the semantic cache uses the trees",
            type(exc).__name__,
        )
        return None
