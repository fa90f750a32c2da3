"""The crash drill: run a job in worker subprocesses, SIGKILL them at random moments, resume,
and check every record against the input.

``tiergate batch drill --records N --crashes K`` starts its own sim (with a TPM limit) and
gateway unless ``--gateway`` is given, writes N synthetic records, runs the job with W worker
processes (``--workers``; several need ``--db postgresql+psycopg://...``), kills a random one
with SIGKILL after a random time K times (each is restarted at once under the same name), then
checks: every record done exactly once, with the label the sim gives it. The last line is JSON:

  records, done, lost (not done), duplicated (answers committed twice), redone_calls (upstream
  calls paid again after a crash: the sim's answered calls minus the job's paid calls),
  tpm_used_share (the job's tokens / the most the limit allowed over its D minutes, which is
  TPM x (D + 1) because a minute's allowance is available at once), rate_limited (429s the provider
  sent), tokens_per_record_ratio (tokens per record at one record per call / the job's).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.batch.results import result_rows
from gateway.batch.runner import run_job
from gateway.batch.spec import JobSpec, load_job
from gateway.batch.stack import DrillStack, job_yaml, write_records
from gateway.batch.store import DONE, Store
from gateway.sim.batch_answers import expected_code
from gateway.sim.control import SimControl

SINGLE_SAMPLE = 200  # records measured at one record per call


@dataclass(frozen=True)
class DrillOptions:
    records: int
    crashes: int
    workers: int = 1
    db: str | None = None
    gateway: str | None = None
    key: str | None = None
    sim: str | None = None
    tpm: int = 200_000
    records_per_call: int = 20
    concurrency: int = 8
    seed: int = 0
    keep: bool = False


def _worker_cmd(job_file: Path, base_url: str, key: str, name: str) -> list[str]:
    return [
        sys.executable, "-m", "gateway", "batch", "run", "--job", str(job_file),
        "--gateway", base_url, "--key", key, "--worker", name,
        "--yes", "--no-estimate", "--quiet",
    ]  # fmt: skip


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)


def run_workers(
    job_file: Path, base_url: str, key: str, opts: DrillOptions, work: Path, life_s: float
) -> int:
    """Run the job in ``opts.workers`` processes, killing one at random ``opts.crashes`` times;
    returns the kills made."""
    rng = random.Random(opts.seed)
    names = [f"drill-w{i}" for i in range(opts.workers)]
    procs = {n: _spawn(_worker_cmd(job_file, base_url, key, n), work / f"{n}.log") for n in names}
    kills = 0
    next_kill = time.monotonic() + rng.uniform(0.3 * life_s, 1.7 * life_s)
    while any(p.poll() is None for p in procs.values()):
        failed = [n for n, p in procs.items() if p.returncode not in (None, 0)]
        if failed:
            raise RuntimeError(f"worker {failed[0]} exited with {procs[failed[0]].returncode}")
        if kills < opts.crashes and time.monotonic() >= next_kill:
            alive = [n for n, p in procs.items() if p.poll() is None]
            victim = rng.choice(alive)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills += 1
            procs[victim] = _spawn(_worker_cmd(job_file, base_url, key, victim), work / "w.log")
            next_kill = time.monotonic() + rng.uniform(0.3 * life_s, 1.7 * life_s)
        time.sleep(0.05)
    failed = [n for n, p in procs.items() if p.returncode != 0]
    if failed:
        raise RuntimeError(f"worker {failed[0]} exited with {procs[failed[0]].returncode}")
    return kills


def check(spec: JobSpec, store: Store, seed: int, model: str | None) -> dict[str, int]:
    """Every record against the input: done, lost, wrong label (when the sim is known)."""
    codes = tuple(spec.codes())
    names = spec.code_map()
    done = lost = wrong = 0
    for row in result_rows(spec, store):
        if row["status"] != DONE:
            lost += 1
            continue
        done += 1
        if model is not None:
            text = str(row["record"].get("text", ""))
            want = names[expected_code(seed, model, row["id"], " ".join(text.split()), codes)]
            wrong += int(row["answer"] != want)
    return {"done": done, "lost": lost, "wrong": wrong}


async def _sim_stats(sim_url: str | None) -> dict[str, Any] | None:
    if sim_url is None:
        return None
    return await SimControl(sim_url).stats()


def _single_tokens_per_record(
    opts: DrillOptions, base: dict[str, Any], url: str, key: str
) -> float:
    """Tokens per record of the same task at one record per call, on a sample."""
    spec = load_job(
        None,
        {**base, "job_id": base["job_id"] + "-single", "records_per_call": 1,
         "alias": "batch-single" if opts.gateway is None else base["alias"]},
    )  # fmt: skip
    sample_path = Path(str(base["input"]) + ".single.jsonl")
    with Path(base["input"]).open("rb") as src, sample_path.open("wb") as dst:
        for _, line in zip(range(SINGLE_SAMPLE), src, strict=False):
            dst.write(line)
    spec = spec.model_copy(update={"input": str(sample_path)})
    totals = asyncio.run(run_job(spec, url, key, "drill-single"))
    return (totals.prompt_tokens + totals.completion_tokens) / max(1, totals.answered)


def run_drill(opts: DrillOptions) -> dict[str, Any]:
    """The drill (see the module docstring); returns the figures of the last line."""
    stack = None
    if opts.gateway is None:
        stack = DrillStack.start(opts.tpm, opts.seed)
    base_url = opts.gateway or (stack.base_url if stack else "")
    key = opts.key or (stack.key if stack else "")
    sim_url = opts.sim or (stack.sim_url if stack else None)
    work = stack.work if stack else Path(tempfile.mkdtemp(prefix="tg-batch-drill-"))
    prefix = f"tgd_{secrets.token_hex(3)}_"
    db = opts.db or f"sqlite:///{work / 'drill.db'}"
    try:
        data = work / "drill-records.jsonl"
        write_records(data, opts.records, opts.seed)
        job_file = work / "drill-job.yaml"
        text = job_yaml(
            f"drill-{opts.seed}", data, db, opts.tpm, "batch", opts.records_per_call,
            opts.concurrency, prefix,
        )  # fmt: skip
        job_file.write_text(text)
        spec = load_job(job_file, {})
        if sim_url is not None:
            asyncio.run(SimControl(sim_url).reset_stats())
        # Each life long enough to do some work: the job's paced minutes spread over the kills.
        paced_s = 60.0 * opts.records * 65 / opts.tpm
        life_s = max(2.0, paced_s / opts.workers / (opts.crashes + 1))
        started = time.time()
        kills = run_workers(job_file, base_url, key, opts, work, life_s)
        store = Store(db, prefix)
        try:
            counts = check(spec, store, opts.seed, "sim-batch" if stack else None)
            calls = store.call_totals(spec.job_id)
            first_last = [at for _, at, _ in store.recent_usage(spec.job_id, started - 1)]
            stats = asyncio.run(_sim_stats(sim_url))
            paid_calls = _answered_calls(store, spec.job_id)
            tokens = calls["prompt_tokens"] + calls["completion_tokens"]
            minutes = max(1e-9, (time.time() - started) / 60.0)
            if first_last:
                minutes = max(1e-9, (max(first_last) - min(first_last)) / 60.0)
            single = _single_tokens_per_record(opts, orjson.loads(text), base_url, key)
            if not opts.keep:
                store.drop()
        finally:
            store.close()
        answered = None if stats is None else _answered(stats)
        figures = {
            "records": opts.records,
            "done": counts["done"],
            "lost": counts["lost"],
            "duplicated": int(calls["duplicates"]),
            "redone_calls": None if answered is None else max(0, answered - paid_calls),
            # A provider's minute allowance is there at once: D minutes allow TPM x (D + 1).
            "tpm_used_share": round(tokens / (opts.tpm * (minutes + 1.0)), 3),
            "rate_limited": None if stats is None else int(stats["rate_limited"]),
            "tokens_per_record_ratio": round(single / (tokens / max(1, counts["done"])), 2),
        }
        print(
            f"kills {kills}, wrong labels {counts['wrong']}, calls {int(calls['calls'])} "
            f"(replayed after a crash {int(calls['replayed'])}), tokens {int(tokens):,} over "
            f"{minutes:.2f} min, tokens/record {tokens / max(1, counts['done']):.1f} vs "
            f"{single:.1f} at one record per call",
            flush=True,
        )
        return figures
    finally:
        if stack is not None:
            stack.stop(keep=opts.keep)
        elif not opts.keep:
            shutil.rmtree(work, ignore_errors=True)


def _answered(stats: dict[str, Any]) -> int:
    """Chat calls the sim answered (and charged) for the job: all minus refused ones."""
    chat = sum(n for path, n in stats["by_path"].items() if "chat/completions" in path)
    return int(chat) - int(stats["rate_limited"]) - int(stats["faults_injected"])


def _answered_calls(store: Store, job_id: str) -> int:
    """The job's calls that got an answer (paid, or replayed by the gateway after a crash)."""
    import sqlalchemy as sa

    c = store.calls
    with store.engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).where((c.c.job_id == job_id) & (c.c.outcome != "error"))
        ).scalar_one()
    return int(n)
