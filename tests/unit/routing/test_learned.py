"""Training writes a deterministic, loadable artifact whose scores order prompts by gain.

Embeddings come from the deterministic ``HashEmbedder`` (pure unit tests only): the model's
code paths are the real ones, the vectors are bag-of-words stand-ins.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from cache.embedder import HashEmbedder
from gateway.routing.learned import LearnedRouter
from gateway.routing.train import train_router

HARD = "Compute the integral of {a} x^{b} from {a} to {b} and simplify the result"
EASY = "Say hello to {name} politely in one short friendly sentence number {a}"
NAMES = ["Ann", "Bob", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]


def write_data(path: Path, n: int = 300, seed: int = 7) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        a, b = rng.randint(2, 99), rng.randint(2, 9)
        if i % 2:
            row = {"prompt": HARD.format(a=a, b=b), "weak": int(rng.random() < 0.2), "strong": 1}
            row["subject"] = "calculus"
        else:
            name = rng.choice(NAMES)
            row = {"prompt": EASY.format(name=name, a=i), "weak": 1, "strong": 1}
            row["subject"] = "greetings"
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def hash_embed(prompts: Sequence[str]) -> np.ndarray:
    embedder = HashEmbedder(dim=64)
    return np.stack([embedder.vector(p) for p in prompts])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("router")
    data = write_data(root / "synthetic.jsonl")
    train_router([data], root / "art", dim=1024, log=io.StringIO(), embed=hash_embed)
    return root / "art"


def test_artifact_loads_and_orders_prompts_by_gain(artifact: Path) -> None:
    router = LearnedRouter.load(artifact)
    assert router.needs_embedding
    assert len(router.version) == 12
    hard = HARD.format(a=5, b=3)
    easy = EASY.format(name="Zoe", a=1)
    vectors = hash_embed([hard, easy])
    assert router.score(hard, vectors[0]) > router.score(easy, vectors[1])


def test_threshold_for_is_calibrated_on_training_scores(artifact: Path, tmp_path: Path) -> None:
    router = LearnedRouter.load(artifact)
    assert router.threshold_for(0.0) == float("inf")
    assert router.threshold_for(0.2) >= router.threshold_for(0.5) >= router.threshold_for(1.0)
    # Fresh prompts like the training data's: about strong_share of them score above.
    rows = [
        json.loads(line)
        for line in write_data(tmp_path / "fresh.jsonl", seed=11).read_text().splitlines()
    ]
    prompts = [r["prompt"] for r in rows]
    scores = np.array(
        [router.score(p, v) for p, v in zip(prompts, hash_embed(prompts), strict=True)]
    )
    for share in (0.2, 0.5, 0.8):
        assert abs(float(np.mean(scores >= router.threshold_for(share))) - share) < 0.1
    with pytest.raises(ValueError, match="strong_share"):
        router.threshold_for(1.5)


def test_meta_records_data_split_and_command(artifact: Path) -> None:
    meta = json.loads((artifact / "router.json").read_text())
    training = meta["training"]
    assert training["data"][0]["file"] == "synthetic.jsonl"
    assert training["split_seed"] == 0
    assert "tiergate train router --data" in training["command"]
    assert 0 < training["rows"] < 300  # the test split was held out
    assert meta["groups"] == ["calculus", "greetings"]


def test_training_is_deterministic(artifact: Path, tmp_path: Path) -> None:
    data = write_data(tmp_path / "synthetic.jsonl")
    train_router([data], tmp_path / "again", dim=1024, log=io.StringIO(), embed=hash_embed)
    assert (tmp_path / "again" / "weights.npz").read_bytes() == (
        artifact / "weights.npz"
    ).read_bytes()


def test_words_only_router_needs_no_embedding(tmp_path: Path) -> None:
    data = write_data(tmp_path / "synthetic.jsonl")
    router = train_router(
        [data], tmp_path / "words", use_embedding=False, dim=1024, log=io.StringIO()
    )
    assert not router.needs_embedding
    hard, easy = HARD.format(a=9, b=4), EASY.format(name="Bob", a=2)
    assert router.score(hard, None) > router.score(easy, None)


def test_a_foreign_format_is_refused(artifact: Path, tmp_path: Path) -> None:
    meta = json.loads((artifact / "router.json").read_text())
    (tmp_path / "router.json").write_text(json.dumps({**meta, "format": 99}))
    (tmp_path / "weights.npz").write_bytes((artifact / "weights.npz").read_bytes())
    with pytest.raises(ValueError, match="format"):
        LearnedRouter.load(tmp_path)
