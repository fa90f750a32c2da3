"""The sim's quality mode: known prompts answered as the weak or strong model did (openai SDK)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import pytest_asyncio

from gateway.sim import SimConfig, SimServer, load_sim_config, start_sim
from gateway.sim.config import SimConfigError
from gateway.sim.control import http_request
from gateway.sim.quality import QualityBook, graded

ROWS = [
    {
        "prompt": "What is 2+2?",
        "weak": 0,
        "strong": 1,
        "weak_response": "2+2 = <<2+2=5>>5\n#### 5",
        "strong_response": "2+2=4\n#### 4",
    },
    {"prompt": "Capital of France?\nA. Paris\nB. Lyon\nAnswer:", "weak": 1, "strong": 1},
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "quality.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest_asyncio.fixture
async def sim(dataset: Path) -> AsyncIterator[SimServer]:
    config = SimConfig.model_validate(
        {
            "models": {
                "weak": {"logprob": -0.5, "quality": {"dataset": str(dataset), "role": "weak"}},
                "strong": {"quality": {"dataset": str(dataset), "role": "strong"}},
            }
        }
    )
    server = await start_sim("127.0.0.1", 0, config)
    yield server
    await server.close()


@pytest.mark.asyncio
async def test_known_prompts_get_each_roles_answer_with_matching_confidence(
    sim: SimServer,
) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{sim.base_url}/v1", api_key="x", max_retries=0
    ) as client:
        await check_answers(client, sim)


async def check_answers(client: openai.AsyncOpenAI, sim: SimServer) -> None:
    weak = await client.chat.completions.create(
        model="weak", messages=[{"role": "user", "content": "What is 2+2?"}], logprobs=True
    )
    strong = await client.chat.completions.create(
        model="strong", messages=[{"role": "user", "content": "What is 2+2?"}], logprobs=True
    )
    assert weak.choices[0].message.content == ROWS[0]["weak_response"].strip()
    assert strong.choices[0].message.content == ROWS[0]["strong_response"]
    assert weak.choices[0].logprobs is not None and strong.choices[0].logprobs is not None
    weak_lp = weak.choices[0].logprobs.content[0].logprob  # type: ignore[index]
    strong_lp = strong.choices[0].logprobs.content[0].logprob  # type: ignore[index]
    assert strong_lp > weak_lp  # right answers are the confident ones here
    mmlu = await client.chat.completions.create(
        model="weak", messages=[{"role": "user", "content": ROWS[1]["prompt"]}]
    )
    assert (mmlu.choices[0].message.content or "").startswith("Answer: ")
    other = await client.chat.completions.create(
        model="weak", messages=[{"role": "user", "content": "not in the dataset"}]
    )
    assert "Answer:" not in (other.choices[0].message.content or "")
    stats = await http_request(sim.base_url, "GET", "/_sim/stats")
    quality = json.loads(stats.body)["quality"]
    assert quality == {
        "weak": {"answered": 2, "correct": 1},
        "strong": {"answered": 1, "correct": 1},
    }


def test_logprobs_separate_right_from_wrong_answers_on_average() -> None:
    right = [graded(f"p{i}", {"weak": 1}, "weak").logprob for i in range(500)]
    wrong = [graded(f"p{i}", {"weak": 0}, "weak").logprob for i in range(500)]
    assert sum(right) / 500 > sum(wrong) / 500
    assert min(right) > max(wrong) - 2  # overlapping, not a perfect signal


def test_book_matches_on_the_stripped_last_user_text(dataset: Path) -> None:
    book = QualityBook.load(dataset, "strong")
    assert len(book) == 2
    found = book.lookup("  What is 2+2?\n")
    assert found is not None and found.correct


def test_a_missing_dataset_stops_the_sim_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("models:\n  m: {quality: {dataset: nope.jsonl, role: weak}}\n")
    with pytest.raises(SimConfigError, match=r"models\.m\.quality\.dataset"):
        load_sim_config(str(config))


def test_the_shipped_sim_config_loads_its_demo_dataset() -> None:
    root = Path(__file__).resolve().parents[3]
    config = load_sim_config(str(root / "routing_rules/sim.yaml"))
    quality = config.models["sim-fast"].quality
    assert quality is not None and Path(quality.dataset).is_file()
