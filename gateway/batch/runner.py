"""Running a job: claim a group, call, match by id, commit; as many calls at once as pacing allows.

Use ``run_job(spec, gateway_url, api_key, worker)`` (the CLI's ``tiergate batch run``). Several
processes may run the same job on one PostgreSQL store: each claims its own groups (see
store.py). A phase per alias: the first model, the second (two models), then the tie-breaker
on the disagreements. A phase ends when no unit of its alias is pending anywhere.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
import orjson

from gateway.batch.calls import Answer, Request, estimate_prompt_tokens, send
from gateway.batch.estimate import Estimate, Sample, estimate, sample_prompt
from gateway.batch.pacing import Pacer
from gateway.batch.progress import Progress
from gateway.batch.prompts import Item, build_prompt, max_output_tokens, parse_reply
from gateway.batch.sources import read_records
from gateway.batch.spec import JobSpec, request_salt, template_hash
from gateway.batch.store import PENDING, CallUsage, Claim, Provenance, Store, Unit

IDLE_POLL_S = 0.5
SHARED_REFRESH_S = 2.0


@dataclass
class RunTotals:
    calls: int = 0
    answered: int = 0
    skips: int = 0
    errors: int = 0
    splits: int = 0
    replayed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)


def load_job_records(spec: JobSpec, store: Store) -> int:
    """Load the input into the store once (a no-op on resume); returns records loaded now."""
    from gateway.batch.prompts import record_text

    rows = (
        (rid, record_text(rec, spec), orjson.dumps(rec, default=str).decode())
        for rid, rec in read_records(spec)
    )
    return store.load(spec.job_id, spec.aliases(), rows)


@dataclass
class Worker:
    """One process's share of a job: its client, pacer, store and running totals."""

    spec: JobSpec
    store: Store
    client: openai.AsyncOpenAI
    name: str
    pacer: Pacer
    progress: Progress | None = None
    rng: random.Random = field(default_factory=random.Random)
    totals: RunTotals = field(default_factory=RunTotals)
    out_per_record: float = 0.0  # learned completion tokens per record
    on_call: Callable[[], None] | None = None  # the drill's hook

    def _estimate(self, prompt: str, count: int) -> float:
        out = (
            self.out_per_record * count * 1.2
            if self.out_per_record
            else max_output_tokens(self.spec, count)
        )
        return estimate_prompt_tokens(prompt) + out

    def _usage(self, answer: Answer, outcome: str) -> CallUsage:
        cost_header = answer.header("x-tiergate-cost-usd")
        if answer.replayed:
            cost = 0.0
        elif cost_header is not None:
            cost = float(cost_header)
        else:
            cost = self.spec.price.usd(answer.prompt_tokens, answer.completion_tokens)
        return CallUsage(
            0 if answer.replayed else answer.prompt_tokens,
            0 if answer.replayed else answer.completion_tokens,
            cost,
            outcome,
        )

    def _provenance(self, answer: Answer) -> Provenance:
        return Provenance(
            model=answer.header("x-tiergate-model") or answer.model,
            target=answer.header("x-tiergate-target"),
            config_version=answer.header("x-tiergate-config-version"),
            template_hash=template_hash(self.spec),
            worker=self.name,
            replayed=answer.replayed,
        )

    def _count(self, usage: CallUsage, answer: Answer) -> None:
        t = self.totals
        t.calls += 1
        t.replayed += int(answer.replayed)
        t.prompt_tokens += usage.prompt_tokens
        t.completion_tokens += usage.completion_tokens
        t.cost_usd += usage.cost_usd
        if self.progress is not None:
            self.progress.update(self.totals, self.pacer)

    async def process(self, claim: Claim) -> None:
        """One group: call, match by id, commit; a malformed reply splits it in halves."""
        spec = self.spec
        items = [Item(u.rid, u.text) for u in claim.units]
        prompt = build_prompt(spec, items)
        request = Request(
            claim.alias,
            prompt,
            max_output_tokens(spec, len(items)),
            spec.temperature,
            claim.key,
            self._estimate(prompt, len(items)),
        )
        if self.on_call is not None:
            self.on_call()
        answer = await send(self.client, request, self.pacer, self.rng)
        prov = self._provenance(answer)
        if answer.error is not None:
            usage = CallUsage(0, 0, 0.0, "error")
            self.store.commit(spec.job_id, claim, {}, usage, prov, spec.max_attempts, True)
            self.totals.errors += len(items)
            self._count(usage, answer)
            return
        parsed = parse_reply(spec, items, answer.content)
        if answer.completion_tokens and not answer.replayed and parsed.answers:
            rate = answer.completion_tokens / len(items)
            old = self.out_per_record
            self.out_per_record = 0.8 * old + 0.2 * rate if old else rate
        if parsed.malformed and len(items) > 1:
            usage = self._usage(answer, "malformed")
            first, second = self.store.split(spec.job_id, claim, usage, prov)
            self.totals.splits += 1
            self._count(usage, answer)
            await asyncio.gather(self.process(first), self.process(second))
            return
        outcome = "malformed" if parsed.malformed else "ok"
        usage = self._usage(answer, outcome)
        done = self.store.commit(
            spec.job_id, claim, parsed.answers, usage, prov, spec.max_attempts, parsed.malformed
        )
        self.totals.answered += done
        if parsed.malformed:
            self.totals.errors += len(items)
        else:
            self.totals.skips += len(parsed.skipped)
        self._count(usage, answer)

    def refresh_shared(self, first: bool = False) -> None:
        """Read the job's last minute of calls from the store: this worker's own (after a
        restart, once) into its window; the other workers' as their share of the limit."""
        wall, mono = time.time(), time.monotonic()
        mine: list[tuple[float, float]] = []
        others = 0.0
        for worker, at, tokens in self.store.recent_usage(self.spec.job_id, wall - 60.0):
            if worker == self.name:
                mine.append((mono - (wall - at), float(tokens)))
            else:
                others += tokens
        if first:
            self.pacer.seed(mine)
        self.pacer.shared_tokens = others

    def _pending(self, alias: str) -> int:
        return self.store.counts(self.spec.job_id).get(alias, {}).get(PENDING, 0)

    async def run_alias(self, alias: str) -> None:
        """Until no unit of ``alias`` is pending: keep up to the pacer's concurrency in flight."""
        spec = self.spec
        tasks: set[asyncio.Task[None]] = set()
        refreshed = time.monotonic()
        while True:
            if time.monotonic() - refreshed > SHARED_REFRESH_S:
                self.refresh_shared()
                self.store.renew(spec.job_id, self.name, spec.lease_s)
                refreshed = time.monotonic()
            while len(tasks) < self.pacer.concurrency:
                # While calls are in flight, only full groups: their skips will join the rest.
                full = spec.records_per_call if tasks else 1
                claim = self.store.claim(
                    spec.job_id,
                    alias,
                    self.name,
                    spec.records_per_call,
                    spec.lease_s,
                    full,
                    request_salt(spec),
                )
                if claim is None:
                    break
                tasks.add(asyncio.create_task(self.process(claim)))
            if not tasks:
                if self._pending(alias) == 0:
                    return
                await asyncio.sleep(IDLE_POLL_S)  # others hold the rest; their leases may end
                continue
            # Wake at least every few seconds: the heartbeat above must not stall.
            finished, tasks = await asyncio.wait(
                tasks, timeout=SHARED_REFRESH_S, return_when=asyncio.FIRST_COMPLETED
            )
            for task in finished:
                task.result()

    async def run(self) -> RunTotals:
        spec = self.spec
        self.store.adopt(spec.job_id, self.name)
        self.refresh_shared(first=True)
        for alias in spec.aliases():
            await self.run_alias(alias)
        if spec.tie_breaker and spec.second_alias:
            self.store.add_tie_breaks(spec.job_id, spec.alias, spec.second_alias, spec.tie_breaker)
            await self.run_alias(spec.tie_breaker)
        if self.progress is not None:
            self.progress.update(self.totals, self.pacer, final=True)
        return self.totals


def make_client(gateway_url: str, api_key: str, timeout_s: float = 120.0) -> openai.AsyncOpenAI:
    """The SDK client: no retries of its own (ours pace and count them)."""
    return openai.AsyncOpenAI(
        base_url=gateway_url, api_key=api_key, max_retries=0, timeout=timeout_s
    )


def make_pacer(spec: JobSpec) -> Pacer:
    share = spec.limits.share
    tpm = spec.limits.tpm * share if spec.limits.tpm else None
    rpm = spec.limits.rpm * share if spec.limits.rpm else None
    return Pacer(tpm=tpm, rpm=rpm, max_concurrency=spec.workers)


async def run_job(
    spec: JobSpec,
    gateway_url: str,
    api_key: str,
    worker: str,
    progress: Progress | None = None,
    on_call: Callable[[], None] | None = None,
) -> RunTotals:
    """Load (once) and run the job to the end on this process."""
    store = Store(spec.db, spec.table_prefix)
    try:
        load_job_records(spec, store)
        client = make_client(gateway_url, api_key)
        async with client:
            w = Worker(spec, store, client, worker, make_pacer(spec), progress, on_call=on_call)
            if progress is not None:
                progress.begin(store, spec)
            return await w.run()
    finally:
        store.close()


async def take_sample(
    spec: JobSpec, store: Store, client: openai.AsyncOpenAI, calls: int
) -> Sample:
    """The job's first ``calls`` calls, sent at once as the run will send them (same keys, so
    the run replays them for free); what they measured feeds the estimate. Sent together, their
    latency is closer to what a run with several calls in flight sees than one call alone."""
    from gateway.batch.tables import call_key

    pacer = make_pacer(spec)
    rng = random.Random()
    groups = store.peek(spec.job_id, spec.alias, spec.records_per_call, calls)

    async def one(units: list[Unit]) -> tuple[int, int, float, int, int, float]:
        items = [Item(u.rid, u.text) for u in units]
        prompt, cap, estimated = sample_prompt(spec, items)
        key = call_key(spec.job_id, spec.alias, units, request_salt(spec))
        request = Request(spec.alias, prompt, cap, spec.temperature, key, estimated + cap)
        started = time.monotonic()
        answer = await send(client, request, pacer, rng)
        latency = time.monotonic() - started
        if answer.error is not None:
            raise RuntimeError(f"the sample call failed: {answer.error}")
        parsed = parse_reply(spec, items, answer.content)
        return (len(items), len(parsed.skipped), estimated, answer.prompt_tokens,
                answer.completion_tokens, latency)  # fmt: skip

    results = await asyncio.gather(*(one(units) for units in groups))
    n = max(1, len(results))
    return Sample(
        records=sum(r[0] for r in results),
        estimated_prompt_tokens=sum(r[2] for r in results),
        prompt_tokens=sum(r[3] for r in results),
        completion_tokens=sum(r[4] for r in results),
        skipped=sum(r[1] for r in results),
        latency_s=sum(r[5] for r in results) / n,
        calls=len(results),
    )


async def estimate_job(spec: JobSpec, gateway_url: str, api_key: str, calls: int) -> Estimate:
    """Load the job (once), sample ``calls`` calls (0: none) and estimate the rest."""
    store = Store(spec.db, spec.table_prefix)
    try:
        load_job_records(spec, store)
        sample = None
        if calls > 0:
            async with make_client(gateway_url, api_key) as client:
                sample = await take_sample(spec, store, client, calls)
        texts = store.pending_texts(spec.job_id).get(spec.alias, [])
        return estimate(spec, texts, sample)
    finally:
        store.close()
