"""The real embedder (all-MiniLM-L6-v2, both backends) and the micro-batching machinery."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cache.embedder import ModelEmbedder, Vectors, load_embedder

PARAPHRASE = ("How do I reset my password?", "How can I reset my password?")
UNRELATED = "What is the capital of France?"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx(models: Path) -> Iterator[ModelEmbedder]:
    embedder = load_embedder(backend="onnx", cache_dir=models)
    yield embedder
    asyncio.run(embedder.aclose())


@pytest.fixture(scope="module")
def int8(models: Path) -> Iterator[ModelEmbedder]:
    embedder = load_embedder(backend="onnx-int8", cache_dir=models)
    yield embedder
    asyncio.run(embedder.aclose())


@pytest.fixture(scope="module")
def reference() -> Iterator[ModelEmbedder]:
    embedder = load_embedder(backend="torch")
    yield embedder
    asyncio.run(embedder.aclose())


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", ["onnx", "int8", "reference"])
async def test_a_paraphrase_scores_higher_than_an_unrelated_sentence(
    backend: str, request: pytest.FixtureRequest
) -> None:
    embedder: ModelEmbedder = request.getfixturevalue(backend)
    a, b, c = await embedder.embed([*PARAPHRASE, UNRELATED])
    assert embedder.dim == 384
    assert float(a @ b) > 0.9
    assert float(a @ c) < 0.3
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.asyncio
async def test_both_backends_give_the_same_vectors(
    onnx: ModelEmbedder, reference: ModelEmbedder
) -> None:
    texts = [*PARAPHRASE, UNRELATED, "Cancel my subscription", "a much longer sentence " * 10]
    x, y = await onnx.embed(texts), await reference.embed(texts)
    assert np.min(np.sum(x * y, axis=1)) > 0.9999


@pytest.mark.asyncio
async def test_int8_stays_close_to_the_reference(int8: ModelEmbedder, onnx: ModelEmbedder) -> None:
    texts = [*PARAPHRASE, UNRELATED, "Cancel my subscription", "Don't cancel my subscription"]
    x, y = await int8.embed(texts), await onnx.embed(texts)
    assert np.min(np.sum(x * y, axis=1)) > 0.97


@pytest.mark.asyncio
async def test_an_int8_vector_does_not_depend_on_what_else_is_in_its_batch(
    int8: ModelEmbedder,
) -> None:
    # The int8 model quantises activations with one scale per tensor: in a batch, the same text
    # came out up to 0.02 apart in cosine depending on its neighbours and their padding.
    text = "How old should they be when we begin?"
    neighbours = ["Is it safe?", "A very long question about " + "mortgage rates " * 20, "Ok"]
    alone = int8._encoder.encode([text])[0]
    for k in range(len(neighbours) + 1):
        batch = [*neighbours[:k], text, *neighbours[k:]]
        assert np.array_equal(int8._encoder.encode(batch)[k], alone)


@pytest.mark.asyncio
async def test_concurrent_requests_share_batches_and_get_their_own_rows(
    onnx: ModelEmbedder,
) -> None:
    texts = [f"Question number {i} about the weather in town {i}" for i in range(24)]
    before = onnx.batches
    together = await asyncio.gather(*(onnx.embed([t]) for t in texts))
    assert onnx.batches - before < len(texts)  # requests that waited went as one batch
    alone = ModelEmbedder(onnx._encoder, lru_size=0)  # same model, no LRU, one at a time
    for text, rows in zip(texts, together, strict=True):
        assert np.allclose(rows[0], (await alone.embed([text]))[0], atol=1e-5)


@pytest.mark.asyncio
async def test_identical_inputs_are_embedded_once(onnx: ModelEmbedder) -> None:
    text = "A sentence used only by the LRU test"
    first = await onnx.embed([text, text])
    encoded = onnx.encoded
    again = await onnx.embed([text])
    assert onnx.encoded == encoded
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[0], first[1])


def test_fits_says_when_a_text_would_be_truncated(onnx: ModelEmbedder) -> None:
    assert onnx.fits("short question")
    assert not onnx.fits("word " * 400)


class FlakyEncoder:
    """Fails its first batch, then embeds; records the batches it was given."""

    dim = 4
    max_tokens = 16

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()

    def encode(self, texts: list[str]) -> Vectors:
        self.release.wait(5)
        self.batches.append(texts)
        if len(self.batches) == 1:
            raise RuntimeError("model exploded")
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2

    def token_count(self, text: str) -> int:
        return len(text.split())


@pytest.mark.asyncio
async def test_a_failed_batch_fails_its_callers_only_and_waiting_texts_form_the_next() -> None:
    encoder = FlakyEncoder()
    embedder = ModelEmbedder(encoder)
    first = asyncio.ensure_future(embedder.embed(["a"]))
    await asyncio.sleep(0.01)  # "a" is computing; these three wait and go together
    waiting = [asyncio.ensure_future(embedder.embed([t])) for t in ("b", "c", "b")]
    cancelled = asyncio.ensure_future(embedder.embed(["d"]))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    encoder.release.set()
    with pytest.raises(RuntimeError, match="exploded"):
        await first
    results = await asyncio.gather(*waiting)
    assert all(r.shape == (1, 4) for r in results)
    assert encoder.batches == [["a"], ["b", "c", "d"]]  # duplicates merged
    assert (await embedder.embed(["e"])).shape == (1, 4)  # still serving
    await embedder.aclose()
