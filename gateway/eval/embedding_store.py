"""Embeddings computed once and kept on disk, for evaluations and training runs only.

When to use: ``tiergate eval cache --split ...`` and ``tiergate train cache-verifier`` embed tens
of thousands of sentences; on a shared 2-core machine that takes minutes, so every vector is
kept under ``var/embeddings/`` (gitignored), keyed by the model and the text's SHA-256. The
gateway itself never uses this (it has the embedder's in-memory LRU).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from cache.embedder import Embedder, Vectors

CHUNK = 256
# Vectors made before the encoder ran each text alone (fourteenth session) were computed in
# batches of 256 and depend on their neighbours: a new file name leaves them unread.
VERSION = "alone"


def embeddings_file(models: Path, backend: str = "onnx-int8") -> Path:
    """Where the evaluations keep ``backend``'s vectors, beside the model cache ``models``."""
    return models.parent / "embeddings" / f"minilm-{backend}.{VERSION}.npz"


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:16]


class DiskCachedEmbedder:
    """An ``Embedder`` that answers from files of earlier vectors and adds the new ones to
    ``path``."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.dim = inner.dim
        self._inner = inner
        self._path = path
        self._known: dict[bytes, Vectors] = {}
        self._new = 0
        # The file itself, and any parts computed beside it (``<stem>.part-<name>.npz``). Not
        # ``<stem>-*``: that also matched another model's file ("minilm-onnx-int8.npz" was read
        # as a part of "minilm-onnx.npz", mixing int8 vectors into fp32 evaluations).
        for part in [path, *sorted(path.parent.glob(f"{path.stem}.part-*.npz"))]:
            if part.exists():
                with np.load(part) as data:
                    for k, v in zip(data["keys"], data["vectors"], strict=True):
                        self._known[bytes(k)] = v

    def fits(self, text: str) -> bool:
        return self._inner.fits(text)

    async def embed(self, texts: list[str]) -> Vectors:
        missing = list(dict.fromkeys(t for t in texts if _key(t) not in self._known))
        for i in range(0, len(missing), CHUNK):
            part = missing[i : i + CHUNK]
            for text, row in zip(part, await self._inner.embed(part), strict=True):
                self._known[_key(text)] = row
            self._new += len(part)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._known[_key(text)]
        return out

    def save(self) -> None:
        if not self._new:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array([np.frombuffer(k, dtype=np.uint8) for k in self._known])
        vectors = np.stack(list(self._known.values()))
        tmp = self._path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self._path)
        self._new = 0

    async def aclose(self) -> None:
        self.save()
        await self._inner.aclose()
