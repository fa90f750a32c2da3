"""BatchRun: one batch's lines through the gateway's own pipeline, at low priority.

Policy:

- Each line is an ordinary call of the key that created the batch (its aliases, budgets, rate
  limits, caches, router and fallback all apply), with the principal's priority lowered to
  ``batch``: when targets are at their RPM/TPM limit, the capacity queue serves interactive and
  standard callers first (``gateway/stages/queueing.py``).
- Inside spare capacity only: a line does not start while any call waits in the capacity queue,
  nor while every target of its alias has less than ``GATEWAY_BATCH_HEADROOM`` (20%) of its
  RPM/TPM left (``Throttle.headroom``): that last share stays free for interactive bursts. The
  process runs at most ``GATEWAY_BATCH_CONCURRENCY`` lines at a time across all batches (a
  semaphore shared by every run), so a 1,000-line batch cannot crowd out interactive calls.
- A line that is refused for capacity (429 at capacity, the key's own rate limit, 503) is tried
  again later with full-jitter backoff (1-2-4-8-16 s, or the Retry-After if longer), up to
  ``MAX_TRIES``; a refusal that another try cannot fix (bad body, unknown model, budget spent)
  is written to the error file at once, with the status and error body a direct call gets.
- Every finished line is recorded at once (``JobStore.record_line``); a resumed batch runs only
  the lines without a result. Lines in flight when the process stopped run again (at most
  ``GATEWAY_BATCH_CONCURRENCY`` of them).
- Cancel and expiry are read from the stored record between lines (at most every
  ``STATUS_EVERY_S``): the lines already running finish, no new line starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import orjson
from redis.exceptions import RedisError

from gateway.calls import Call, CallKind, Principal, Reply
from gateway.errors import (
    AuthError,
    BodyTooLarge,
    ClientError,
    GatewayError,
    InvalidRequest,
    ProviderBadResponse,
    QuotaExhausted,
    StateUnavailable,
)
from gateway.http.bodies import parse_json
from gateway.http.errors import error_payload
from gateway.jobs import outputs
from gateway.jobs.lines import CHAT, EMBEDDINGS, BatchLine, endpoint_problems, parse_batch_file
from gateway.jobs.records import BatchRecord, Counts, FileRecord
from gateway.jobs.states import advance, expired, finish
from gateway.jobs.store import JobStore
from gateway.requests import ChatRequest, EmbeddingsRequest
from gateway.runtime import Runtime
from gateway.surface.base import Context, Surface, Translated

log = logging.getLogger("tiergate.jobs")

MAX_TRIES = 6
STATUS_EVERY_S = 0.5
YIELD_POLL_S = 0.05
PRINCIPAL_TTL_S = 5.0
FEATURE = "batch"

# (call, reply or None, error or None, started_ns): accounts a line like a served request.
Recorder = Callable[[Call, Reply | None, GatewayError | None, int], None]


def retry_delay_s(err: GatewayError, tries: int, rng: random.Random) -> float | None:
    """How long to wait before trying a line again after ``err`` (``tries`` made so far), or
    None: write the error line now."""
    if tries >= MAX_TRIES or isinstance(err, QuotaExhausted | AuthError):
        return None
    if isinstance(err, ClientError) or err.status not in (429, 502, 503, 504):
        return None
    jitter = rng.uniform(0, 2 ** (tries - 1))
    return max(err.retry_after_s or 0.0, jitter)


@dataclass(frozen=True, slots=True)
class RunDeps:
    """What a run needs from the process (built once by the scheduler)."""

    store: JobStore
    runtime: Callable[[], Runtime | None]
    slots: asyncio.Semaphore  # shared by every batch of the process
    record: Recorder
    concurrency: int
    max_lines: int
    headroom: float = 0.0  # the share of a target's RPM/TPM batch lines leave free
    # Endpoints served by translation to chat (url -> surface): /v1/completions, /v1/responses.
    surfaces: Mapping[str, Surface] = field(default_factory=dict)
    clock: Callable[[], float] = time.time


class BatchRun:
    def __init__(self, batch_id: str, deps: RunDeps) -> None:
        self.batch_id = batch_id
        self._deps = deps
        self._store = deps.store
        self._rng = random.Random()
        self._stop = False
        self._status_read = 0.0
        self._principal: tuple[Principal, float] | None = None

    def _now(self) -> int:
        return int(self._deps.clock())

    async def run(self) -> None:
        """Validate (if not yet), run the lines without a result, write the files, finish."""
        record = await self._store.get_batch(self.batch_id)
        if record is None or record.terminal:
            return
        lines: tuple[BatchLine, ...] = ()
        if record.status != "cancelling" or record.request_counts.total:
            record, lines = await self._load(record)
            if record.terminal:
                return
        if record.status == "in_progress":
            await self._dispatch(record, lines)
        await self._finalize(lines)

    async def _load(self, record: BatchRecord) -> tuple[BatchRecord, tuple[BatchLine, ...]]:
        """The batch's lines; a batch still validating moves to in_progress or failed."""
        body = await self._store.file_body(record.input_file_id)
        problems: list[dict[str, object]] = []
        lines: tuple[BatchLine, ...] = ()
        if body is None:
            problems = [
                {
                    "code": "file_not_found",
                    "line": None,
                    "param": "input_file_id",
                    "message": f"The input file {record.input_file_id} was deleted.",
                }
            ]
        else:
            try:
                loop = asyncio.get_running_loop()
                lines = await loop.run_in_executor(
                    None, parse_batch_file, body, self._deps.max_lines
                )
                problems = endpoint_problems(lines, record.endpoint)
            except GatewayError as err:
                line = getattr(err, "line", None)
                problems = [
                    {"code": err.code, "line": line, "param": err.param, "message": err.message}
                ]
        now = self._now()

        def start(r: BatchRecord) -> BatchRecord:
            if r.status != "validating":
                return r
            if problems:
                return advance(r, "failed", now, errors=problems)
            model = lines[0].body.get("model")
            return advance(
                r,
                "in_progress",
                now,
                request_counts=Counts(total=len(lines)),
                model=model if isinstance(model, str) else None,
            )

        record = await self._store.update_batch(self.batch_id, start)
        return record, lines

    # --- running lines ----------------------------------------------------------------------

    async def _dispatch(self, record: BatchRecord, lines: tuple[BatchLine, ...]) -> None:
        done = await self._store.done_indices(self.batch_id)
        pending = deque(line for line in lines if line.index not in done)
        if pending:
            log.info("batch %s: %d of %d lines to run", self.batch_id, len(pending), len(lines))
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._deps.concurrency, len(pending))):
                group.create_task(self._worker(record, pending))

    async def _worker(self, record: BatchRecord, pending: deque[BatchLine]) -> None:
        while pending and not await self._should_stop(record):
            if not pending:
                return  # another worker took the last line meanwhile
            await self._spare_capacity(pending[0])
            async with self._deps.slots:
                if not pending or self._stop:
                    return
                line = pending.popleft()
                await self._run_line(record, line)

    async def _should_stop(self, record: BatchRecord) -> bool:
        now = self._deps.clock()
        if self._stop or now - self._status_read < STATUS_EVERY_S:
            return self._stop
        stored = await self._store.get_batch(self.batch_id)
        self._status_read = now  # after the read: a worker arriving meanwhile reads too
        self._stop = (
            self._stop
            or stored is None
            or stored.status != "in_progress"
            or expired(stored, int(now))
        )
        return self._stop

    async def _spare_capacity(self, line: BatchLine) -> None:
        """Wait while interactive calls queue for capacity, or while every target of the line's
        alias is down to its reserved headroom: a batch only uses what is spare."""
        while True:
            runtime = self._deps.runtime()
            if (
                runtime is not None
                and runtime.chain.queued == 0
                and self._has_headroom(runtime, line.body.get("model"))
            ):
                return
            await asyncio.sleep(YIELD_POLL_S)

    def _has_headroom(self, runtime: Runtime, alias_name: object) -> bool:
        reserve = self._deps.headroom
        alias = runtime.rules.aliases.get(alias_name) if isinstance(alias_name, str) else None
        if reserve <= 0 or alias is None:
            return True  # an unknown alias is the pipeline's to refuse
        throttles = [runtime.throttles[t] for t in alias.target_names() if t in runtime.throttles]
        return not throttles or max(t.headroom() for t in throttles) > reserve

    async def _run_line(self, record: BatchRecord, line: BatchLine) -> None:
        tries = 0
        while True:
            tries += 1
            request_id = "req_" + os.urandom(12).hex()
            try:
                try:
                    body = await self._call(record, line, request_id)
                except (GatewayError, asyncio.CancelledError):
                    raise
                except Exception as exc:  # one odd line never stops the batch
                    log.exception("batch %s line %s failed", self.batch_id, line.custom_id)
                    raise GatewayError(f"Internal error ({type(exc).__name__}).") from exc
            except GatewayError as err:
                delay = retry_delay_s(err, tries, self._rng)
                if delay is None:
                    out = outputs.error_line(
                        line.custom_id, request_id, err.status, error_payload(err)
                    )
                    await self._store.record_line(self.batch_id, line.index, False, out)
                    return
                await asyncio.sleep(delay)
                continue
            try:
                out = outputs.output_line(line.custom_id, request_id, body)
            except orjson.JSONDecodeError:
                bad = ProviderBadResponse("The upstream answer is not JSON.")
                out = outputs.error_line(line.custom_id, request_id, bad.status, error_payload(bad))
                await self._store.record_line(self.batch_id, line.index, False, out)
                return
            await self._store.record_line(self.batch_id, line.index, True, out)
            return

    async def _call(self, record: BatchRecord, line: BatchLine, request_id: str) -> bytes:
        """One pipeline call for ``line``: the JSON answer (rendered by the endpoint's surface
        for ``/v1/completions`` and ``/v1/responses``), or the ``GatewayError``."""
        runtime = self._deps.runtime()
        if runtime is None:
            raise StateUnavailable("The gateway is starting.", retry_after_s=1.0)
        started_ns = time.perf_counter_ns()
        try:
            principal = await self._principal_of(runtime, record.key_id)
        except (RedisError, OSError) as exc:
            raise StateUnavailable("The key store is unreachable.", retry_after_s=1.0) from exc
        # The same limits a direct call meets at the edge: body size, depth, the request model.
        body = orjson.dumps(line.body)
        limit = runtime.rules.limits.max_body_bytes
        if len(body) > limit:
            raise BodyTooLarge(f"Request body of {len(body)} bytes exceeds the {limit} byte limit.")
        surface = self._deps.surfaces.get(line.url)
        translated: Translated | None = None
        request: ChatRequest | EmbeddingsRequest
        if surface is not None:
            translated = await surface.translate(
                body, Context(principal, runtime.rules, request_id)
            )
            kind, request = CallKind.CHAT, translated.request
        elif line.url == CHAT:
            kind, request = CallKind.CHAT, parse_json(body, ChatRequest)
        elif line.url == EMBEDDINGS:
            kind, request = CallKind.EMBEDDINGS, parse_json(body, EmbeddingsRequest)
        else:
            raise InvalidRequest(f"This gateway does not serve {line.url} in a batch.")
        call = Call(
            request_id=request_id,
            principal=principal,
            kind=kind,
            alias=request.model,
            request=request,
            started_ns=started_ns,
            config_version=runtime.config_version,
            headers={"x-tiergate-feature": FEATURE},
        )
        try:
            reply = await runtime.pipeline(call)
            try:
                answer = await anext(reply.chunks)
            except StopAsyncIteration:
                raise ProviderBadResponse("The upstream sent an empty answer.") from None
            finally:
                await reply.chunks.aclose()  # type: ignore[attr-defined]
            if surface is not None and translated is not None:
                answer = await surface.whole(translated, answer, reply)
        except GatewayError as err:
            self._deps.record(call, None, err, started_ns)
            raise
        except Exception as exc:  # never let one line stop the batch
            log.exception("batch %s line %s: unexpected error", self.batch_id, line.custom_id)
            internal = GatewayError(f"Internal error ({type(exc).__name__}); id {request_id}.")
            self._deps.record(call, None, internal, started_ns)
            raise internal from None
        self._deps.record(call, reply, None, started_ns)
        return answer

    async def _principal_of(self, runtime: Runtime, key_id: str) -> Principal:
        """The creating key as it is now (a revoked key stops its batch's lines), at batch
        priority; looked up at most every ``PRINCIPAL_TTL_S``."""
        now = time.monotonic()
        if self._principal is not None and now - self._principal[1] < PRINCIPAL_TTL_S:
            return self._principal[0]
        stored = await runtime.keys.get(key_id)
        if stored is None or stored.revoked:
            raise AuthError(f"The key '{key_id}' that created this batch is revoked.")
        principal = replace(stored.principal(), priority="batch")
        self._principal = (principal, now)
        return principal

    # --- the end ----------------------------------------------------------------------------

    async def _finalize(self, lines: tuple[BatchLine, ...]) -> None:
        """Write the output and error files and the final record (safe to repeat: file ids
        are derived from the batch id, so a crash here and a second pass write the same)."""
        record = await self._store.get_batch(self.batch_id)
        if record is None or record.terminal:
            return
        now = self._now()
        done = await self._store.done_indices(self.batch_id)
        undone = [line for line in lines if line.index not in done]
        if undone and record.status != "cancelling" and expired(record, now):
            for line in undone:
                out = outputs.expired_line(line.custom_id)
                await self._store.record_line(self.batch_id, line.index, False, out)
        elif not undone and record.status == "in_progress":
            record = await self._store.update_batch(
                self.batch_id,
                lambda r: advance(r, "finalizing", now) if r.status == "in_progress" else r,
            )
        ok, bad = await self._store.results(self.batch_id)
        output_id = await self._write_file(record, "o", "output", ok)
        error_id = await self._write_file(record, "e", "error", bad)
        usage = outputs.usage_of(ok)
        counts = Counts(
            total=len(lines) or record.request_counts.total, completed=len(ok), failed=len(bad)
        )

        def end(r: BatchRecord) -> BatchRecord:
            if r.terminal:
                return r
            ended = finish(r, now, len(undone), counts, output_id, error_id)
            return ended.model_copy(update={"usage": usage})

        final = await self._store.update_batch(self.batch_id, end)
        await self._store.drop_results(self.batch_id)
        log.info(
            "batch %s: %s (%d ok, %d failed)",
            self.batch_id,
            final.status,
            counts.completed,
            counts.failed,
        )

    async def _write_file(
        self, record: BatchRecord, tag: str, kind: str, lines: list[bytes]
    ) -> str | None:
        if not lines:
            return None
        file_id = "file-" + tag + record.id.removeprefix("batch_")
        body = outputs.jsonl(lines)
        await self._store.put_file(
            FileRecord(
                id=file_id,
                owner=record.owner,
                bytes=len(body),
                created_at=self._now(),
                filename=f"{record.id}_{kind}.jsonl",
                purpose="batch_output",
            ),
            body,
        )
        return file_id
