"""The evaluations' on-disk embedding cache keeps each model's vectors apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from cache.embedder import HashEmbedder
from gateway.eval.embedding_store import DiskCachedEmbedder


class Constant(HashEmbedder):
    """Every text gets the same vector: tells which model a cached vector came from."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    async def embed(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        return np.full((len(texts), self.dim), self.value, dtype=np.float32)


def vectors(embedder: DiskCachedEmbedder, texts: list[str]) -> np.ndarray:
    return asyncio.run(embedder.embed(texts))


def test_another_models_file_beside_it_is_not_read(tmp_path: Path) -> None:
    int8 = DiskCachedEmbedder(Constant(1.0), tmp_path / "minilm-onnx-int8.npz")
    vectors(int8, ["a question"])
    int8.save()
    fp32 = DiskCachedEmbedder(Constant(2.0), tmp_path / "minilm-onnx.npz")
    assert float(vectors(fp32, ["a question"])[0, 0]) == 2.0


def test_its_own_parts_and_file_are_read_back(tmp_path: Path) -> None:
    first = DiskCachedEmbedder(Constant(1.0), tmp_path / "m.npz")
    vectors(first, ["kept"])
    first.save()
    part = DiskCachedEmbedder(Constant(3.0), tmp_path / "m.part-2.npz")
    vectors(part, ["from a part"])
    part.save()
    again = DiskCachedEmbedder(Constant(9.0), tmp_path / "m.npz")
    got = vectors(again, ["kept", "from a part", "new"])
    assert got[:, 0].tolist() == [1.0, 3.0, 9.0]
