"""JobStore: files, batches, per-line results and run leases in the state store (Redis/Valkey).

Why the state store holds the file bodies too (not the data directory): every replica of a
scaled gateway must read a file another replica stored and resume a batch another replica was
running, and the embedded Valkey already persists to the data directory on a laptop. The price
is memory, so uploads are capped (``GATEWAY_BATCH_FILE_MAX_BYTES``).

Per-line completion: each finished line is one hash field (``:out`` or ``:err``, keyed by its
index), written the moment the line finishes, so a resumed batch never runs a line again that
has a result. Record changes go through ``update_batch`` (optimistic WATCH/MULTI), so a cancel
from the HTTP API and the runner's own transitions never overwrite each other.

Leases: one process runs a batch at a time. It holds ``tg:job:lease:<id>`` (SET NX with an
expiry) and renews it; a process that stops (or dies) lets it expire and another takes over.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from gateway.jobs import keyspace as ks
from gateway.jobs.records import BatchRecord, Counts, FileRecord

# Compare-and-renew / compare-and-delete: only the holder may extend or drop a lease.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _score() -> int:
    return time.time_ns() // 1000  # microseconds: the listing order (newest first)


class JobStore:
    """Every read and write of the Files/Batches API. Cheap to build (holds the client)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    # --- files --------------------------------------------------------------------------

    async def put_file(self, record: FileRecord, body: bytes) -> None:
        score = _score()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(ks.file_key(record.id), record.model_dump_json())
            pipe.set(ks.file_body(record.id), body)
            pipe.zadd(ks.files_of(record.owner), {record.id: score})
            pipe.zadd(ks.files_of(ks.EVERYONE), {record.id: score})
            await pipe.execute()

    async def get_file(self, file_id: str) -> FileRecord | None:
        raw = await self._redis.get(ks.file_key(file_id))
        return None if raw is None else FileRecord.model_validate_json(raw)

    async def file_body(self, file_id: str) -> bytes | None:
        body = await self._redis.get(ks.file_body(file_id))
        return body if isinstance(body, bytes) else None

    async def delete_file(self, record: FileRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(ks.file_key(record.id), ks.file_body(record.id))
            pipe.zrem(ks.files_of(record.owner), record.id)
            pipe.zrem(ks.files_of(ks.EVERYONE), record.id)
            await pipe.execute()

    async def list_files(
        self, owner: str, after: str | None, limit: int
    ) -> tuple[list[FileRecord], bool]:
        ids, more = await self._page(ks.files_of(owner), after, limit)
        raws = await self._redis.mget([ks.file_key(i) for i in ids]) if ids else []
        return [FileRecord.model_validate_json(r) for r in raws if r is not None], more

    # --- batches ------------------------------------------------------------------------

    async def put_batch(self, record: BatchRecord) -> None:
        score = _score()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(ks.batch_key(record.id), record.model_dump_json())
            pipe.zadd(ks.batches_of(record.owner), {record.id: score})
            pipe.zadd(ks.batches_of(ks.EVERYONE), {record.id: score})
            pipe.sadd(ks.ACTIVE, record.id)
            await pipe.execute()

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        raw = await self._redis.get(ks.batch_key(batch_id))
        return None if raw is None else BatchRecord.model_validate_json(raw)

    async def update_batch(
        self, batch_id: str, change: Callable[[BatchRecord], BatchRecord]
    ) -> BatchRecord:
        """Apply ``change`` to the stored record atomically (retried when another writer won
        the race). A terminal record leaves the active set in the same transaction."""
        key = ks.batch_key(batch_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise KeyError(batch_id)
                    old = BatchRecord.model_validate_json(raw)
                    new = change(old)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, new.model_dump_json())
                    if new.terminal:
                        pipe.srem(ks.ACTIVE, batch_id)
                    await pipe.execute()
                    return new
                except WatchError:
                    continue

    async def list_batches(
        self, owner: str, after: str | None, limit: int
    ) -> tuple[list[BatchRecord], bool]:
        ids, more = await self._page(ks.batches_of(owner), after, limit)
        raws = await self._redis.mget([ks.batch_key(i) for i in ids]) if ids else []
        return [BatchRecord.model_validate_json(r) for r in raws if r is not None], more

    async def counts(self, record: BatchRecord) -> Counts:
        """The request counts to show: final when terminal, else read from the line results."""
        if record.terminal:
            return record.request_counts
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hlen(ks.batch_outputs(record.id))
            pipe.hlen(ks.batch_errors(record.id))
            ok, bad = await pipe.execute()
        return Counts(total=record.request_counts.total, completed=int(ok), failed=int(bad))

    async def active_batches(self) -> list[BatchRecord]:
        ids = await self.active_ids()
        raws = await self._redis.mget([ks.batch_key(i) for i in ids]) if ids else []
        return [BatchRecord.model_validate_json(r) for r in raws if r is not None]

    async def active_ids(self) -> list[str]:
        return sorted(_text(i) for i in await self._redis.smembers(ks.ACTIVE))

    # --- per-line results ---------------------------------------------------------------

    async def record_line(self, batch_id: str, index: int, ok: bool, line: bytes) -> None:
        key = ks.batch_outputs(batch_id) if ok else ks.batch_errors(batch_id)
        await self._redis.hset(key, str(index), line)

    async def done_indices(self, batch_id: str) -> set[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hkeys(ks.batch_outputs(batch_id))
            pipe.hkeys(ks.batch_errors(batch_id))
            ok, bad = await pipe.execute()
        return {int(_text(i)) for i in [*ok, *bad]}

    async def results(self, batch_id: str) -> tuple[list[bytes], list[bytes]]:
        """Output lines and error lines, each in input order."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(ks.batch_outputs(batch_id))
            pipe.hgetall(ks.batch_errors(batch_id))
            ok, bad = await pipe.execute()

        def ordered(found: dict[bytes, bytes]) -> list[bytes]:
            return [found[k] for k in sorted(found, key=lambda k: int(_text(k)))]

        return ordered(ok), ordered(bad)

    async def drop_results(self, batch_id: str) -> None:
        await self._redis.delete(ks.batch_outputs(batch_id), ks.batch_errors(batch_id))

    # --- leases -------------------------------------------------------------------------

    async def claim(self, batch_id: str, holder: str, ttl_ms: int) -> bool:
        return bool(await self._redis.set(ks.lease(batch_id), holder, nx=True, px=ttl_ms))

    async def renew(self, batch_id: str, holder: str, ttl_ms: int) -> bool:
        result = await self._redis.eval(RENEW, 1, ks.lease(batch_id), holder, ttl_ms)
        return bool(result)

    async def release(self, batch_id: str, holder: str) -> None:
        await self._redis.eval(RELEASE, 1, ks.lease(batch_id), holder)

    # --- paging -------------------------------------------------------------------------

    async def _page(self, key: str, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Ids newest first, starting after ``after``; and whether more follow."""
        start = 0
        if after is not None:
            rank = await self._redis.zrevrank(key, after)
            if not isinstance(rank, int):
                return [], False
            start = rank + 1
        found = await self._redis.zrevrange(key, start, start + limit)
        ids = [_text(i) for i in found if isinstance(i, bytes | str)]
        return ids[:limit], len(ids) > limit
