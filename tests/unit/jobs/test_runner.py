"""BatchRun against a real Valkey with a fake pipeline: resume, expiry, yielding, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.calls import Call, Reply, ReplyStats
from gateway.errors import AllTargetsFailed
from gateway.governance.keystore import KeyRecord
from gateway.jobs.keyspace import owner_of
from gateway.jobs.records import BatchRecord, FileRecord
from gateway.jobs.runner import BatchRun, RunDeps
from gateway.jobs.store import JobStore
from gateway.rules import TargetLimits
from gateway.state import StateStore
from gateway.targets.throttle import Throttle

T0 = int(time.time())


@pytest_asyncio.fixture
async def redis(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    store = await asyncio.get_running_loop().run_in_executor(None, StateStore, None, tmp_path)
    try:
        yield store.redis
    finally:
        await store.aclose()


async def answer(body: bytes) -> AsyncIterator[bytes]:
    yield body


class FakeRuntime:
    """What a run reads from the runtime: the key table, the pipeline, the capacity queue."""

    def __init__(self, fail_first: int = 0, throttle: Throttle | None = None) -> None:
        self.config_version = "test"
        self.chain = SimpleNamespace(queued=0)
        self.rules = SimpleNamespace(
            aliases={"fast": SimpleNamespace(target_names=lambda: ["t"])},
            limits=SimpleNamespace(max_body_bytes=65536),
        )
        self.throttles = {} if throttle is None else {"t": throttle}
        self.keys = SimpleNamespace(get=self._key)
        self.calls: list[Call] = []
        self.fail_first = fail_first
        self.answer: bytes | None = None

    async def _key(self, key_id: str) -> KeyRecord:
        return KeyRecord(id=key_id, sha256="x", team="data")

    async def pipeline(self, call: Call) -> Reply:
        self.calls.append(call)
        if self.fail_first:
            self.fail_first -= 1
            raise AllTargetsFailed("fast", (), status=429, retry_after_s=0.01)
        body = self.answer or orjson.dumps(
            {"object": "chat.completion", "echo": call.request.model}
        )
        return Reply(answer(body), ReplyStats())


async def stored_batch(store: JobStore, n: int) -> BatchRecord:
    lines = b"".join(
        orjson.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "fast", "messages": [{"role": "user", "content": str(i)}]},
            }
        )
        + b"\n"
        for i in range(n)
    )
    owner = owner_of("k1")
    await store.put_file(
        FileRecord(
            id="file-in",
            owner=owner,
            bytes=len(lines),
            created_at=T0,
            filename="in.jsonl",
            purpose="batch",
        ),
        lines,
    )
    record = BatchRecord(
        id="batch_t",
        owner=owner,
        key_id="k1",
        endpoint="/v1/chat/completions",
        input_file_id="file-in",
        created_at=T0,
        expires_at=T0 + 86400,
    )
    await store.put_batch(record)
    return record


def deps(
    store: JobStore, runtime: FakeRuntime, clock: Callable[[], float], headroom: float = 0.0
) -> RunDeps:
    recorded: list[Any] = []
    return RunDeps(
        store=store,
        runtime=lambda: runtime,  # type: ignore[arg-type,return-value]
        slots=asyncio.Semaphore(2),
        record=lambda *a: recorded.append(a),
        concurrency=2,
        max_lines=100,
        clock=clock,
        headroom=headroom,
    )


async def file_lines(store: JobStore, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    body = await store.file_body(file_id)
    assert body is not None
    return [orjson.loads(x) for x in body.splitlines()]


@pytest.mark.asyncio
async def test_resume_runs_only_the_lines_without_a_result(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 5)
    await store.record_line("batch_t", 0, True, b'{"custom_id": "r0", "before": true}')
    await store.record_line("batch_t", 3, False, b'{"custom_id": "r3", "before": true}')
    runtime = FakeRuntime()
    await BatchRun("batch_t", deps(store, runtime, lambda: T0 + 10)).run()
    assert sorted(c.request.messages[0].content for c in runtime.calls) == ["1", "2", "4"]  # type: ignore[union-attr]
    assert all(c.principal.priority == "batch" for c in runtime.calls)
    assert {c.headers["x-tiergate-feature"] for c in runtime.calls} == {"batch"}
    final = await store.get_batch("batch_t")
    assert final is not None and final.status == "completed"
    assert (final.request_counts.completed, final.request_counts.failed) == (4, 1)
    out = await file_lines(store, final.output_file_id)
    assert [o["custom_id"] for o in out] == ["r0", "r1", "r2", "r4"]  # input order
    assert out[0] == {"custom_id": "r0", "before": True}
    assert out[1]["response"]["body"]["echo"] == "fast"
    assert final.model == "fast"
    assert final.usage is not None and final.usage["total_tokens"] == 0  # the fake has no usage
    assert await store.done_indices("batch_t") == set()  # per-line results dropped at the end
    assert await store.active_ids() == []


@pytest.mark.asyncio
async def test_an_expired_batch_writes_batch_expired_lines(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 4)
    await store.record_line("batch_t", 1, True, b'{"custom_id": "r1"}')
    runtime = FakeRuntime()
    await BatchRun("batch_t", deps(store, runtime, lambda: T0 + 86400 + 1)).run()
    assert runtime.calls == []
    final = await store.get_batch("batch_t")
    assert final is not None and final.status == "expired" and final.expired_at
    errors = await file_lines(store, final.error_file_id)
    assert [e["custom_id"] for e in errors] == ["r0", "r2", "r3"]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert all(e["response"] is None for e in errors)
    assert (final.request_counts.completed, final.request_counts.failed) == (1, 3)


@pytest.mark.asyncio
async def test_lines_wait_while_calls_queue_for_capacity(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 2)
    runtime = FakeRuntime()
    runtime.chain.queued = 1
    run = asyncio.create_task(BatchRun("batch_t", deps(store, runtime, time.time)).run())
    await asyncio.sleep(0.3)
    assert runtime.calls == [] and not run.done()
    runtime.chain.queued = 0
    await asyncio.wait_for(run, 10)
    assert len(runtime.calls) == 2


@pytest.mark.asyncio
async def test_a_line_refused_for_capacity_is_tried_again(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 1)
    runtime = FakeRuntime(fail_first=1)
    await BatchRun("batch_t", deps(store, runtime, time.time)).run()
    final = await store.get_batch("batch_t")
    assert final is not None and final.request_counts.completed == 1
    assert len(runtime.calls) == 2


@pytest.mark.asyncio
async def test_a_cancelled_batch_that_never_started_ends_cancelled(
    redis: aioredis.Redis,
) -> None:
    store = JobStore(redis)
    await stored_batch(store, 3)
    await store.update_batch("batch_t", lambda r: r.model_copy(update={"status": "cancelling"}))
    runtime = FakeRuntime()
    await BatchRun("batch_t", deps(store, runtime, time.time)).run()
    final = await store.get_batch("batch_t")
    assert final is not None and final.status == "cancelled"
    assert runtime.calls == [] and final.output_file_id is None


@pytest.mark.asyncio
async def test_lines_leave_the_last_share_of_a_limit_to_interactive_calls(
    redis: aioredis.Redis, make_call: Callable[..., Call]
) -> None:
    store = JobStore(redis)
    await stored_batch(store, 1)
    now = [1000.0]
    throttle = Throttle("t", TargetLimits(rpm=10), lambda: now[0])

    async def upstream(call: Call) -> Reply:
        return Reply(answer(b"{}"), ReplyStats())

    for _ in range(8):  # interactive calls took 8 of 10: 20% left, the reserve
        await throttle(make_call(), upstream)
    runtime = FakeRuntime(throttle=throttle)
    run = asyncio.create_task(BatchRun("batch_t", deps(store, runtime, time.time, 0.2)).run())
    await asyncio.sleep(0.3)
    assert runtime.calls == [] and not run.done()
    now[0] += 6.0  # one request refilled: 30% free
    await asyncio.wait_for(run, 10)
    assert len(runtime.calls) == 1


@pytest.mark.asyncio
async def test_a_line_over_the_body_limit_is_a_413_error_line(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 2)
    runtime = FakeRuntime()
    runtime.rules.limits.max_body_bytes = 10
    await BatchRun("batch_t", deps(store, runtime, time.time)).run()
    final = await store.get_batch("batch_t")
    assert final is not None and final.request_counts.failed == 2
    errors = await file_lines(store, final.error_file_id)
    assert {e["response"]["status_code"] for e in errors} == {413}
    assert runtime.calls == []


@pytest.mark.asyncio
async def test_an_answer_that_is_not_json_is_a_502_error_line(redis: aioredis.Redis) -> None:
    store = JobStore(redis)
    await stored_batch(store, 1)
    runtime = FakeRuntime()
    runtime.answer = b"<html>oops"
    await BatchRun("batch_t", deps(store, runtime, time.time)).run()
    final = await store.get_batch("batch_t")
    assert final is not None and final.status == "completed"
    errors = await file_lines(store, final.error_file_id)
    assert errors[0]["response"]["status_code"] == 502
