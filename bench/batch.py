"""Batch client figures against the sim (TPM-limited) behind a real gateway.

    python -m bench.batch [--minutes 2] [--tpm 200000] [--stated-tpm 2000000]

Prints:
1. tokens per record at 20 records per call and at 1 (the same task and records);
2. pacing over a steady run sized to last about --minutes: the mean share of the TPM limit in
   use (the rolling 60 s sum of the job's tokens, sampled each second from the end of the first
   minute to the last call), and the 429s the provider sent;
3. the estimate made before that run (three sample calls, as `tiergate batch run` makes)
   against the measured time and tokens;
4. the two-million-record case extrapolated from the measured tokens per record and pacing
   share, at --stated-tpm, beside one record per call.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import time
import zlib
from pathlib import Path

from gateway.batch.runner import estimate_job, run_job
from gateway.batch.spec import JobSpec, load_job
from gateway.batch.stack import DrillStack, job_yaml, write_records
from gateway.batch.store import Store
from gateway.sim.control import SimControl


def make_job(
    stack: DrillStack, name: str, records: int, tpm: int, per_call: int, alias: str
) -> JobSpec:
    data = stack.work / f"{name}.jsonl"
    write_records(data, records, seed=zlib.crc32(name.encode()))
    text = job_yaml(
        f"{name}-{secrets.token_hex(3)}", data, f"sqlite:///{stack.work / 'bench.db'}", tpm,
        alias, per_call, 16,
    )  # fmt: skip
    path = stack.work / f"{name}.yaml"
    path.write_text(text)
    return load_job(Path(path), {})


def tokens_per_record(stack: DrillStack, spec: JobSpec) -> tuple[float, float]:
    started = time.monotonic()
    totals = asyncio.run(run_job(spec, stack.base_url, stack.key, "bench"))
    elapsed = time.monotonic() - started
    return (totals.prompt_tokens + totals.completion_tokens) / max(1, totals.answered), elapsed


def window_share(spec: JobSpec, tpm: int, started_wall: float) -> tuple[float, float]:
    """(mean share of TPM in use, minutes measured): the tokens of the calls answered in the
    60 s before each second, from the run's first full minute to its last call, over TPM."""
    store = Store(spec.db, spec.table_prefix)
    try:
        usage = sorted((at, t) for _, at, t in store.recent_usage(spec.job_id, started_wall - 1))
    finally:
        store.close()
    first, last = usage[0][0], usage[-1][0]
    samples = []
    t = first + 60.0
    while t <= last:
        samples.append(sum(tok for at, tok in usage if t - 60.0 < at <= t) / tpm)
        t += 1.0
    if not samples:
        return float("nan"), 0.0
    return sum(samples) / len(samples), (last - first - 60.0) / 60.0


def calls_per_s(spec: JobSpec, started_wall: float) -> float:
    """The most calls the job got answered in any 10 s: what one worker process manages
    when the limit is not in the way (its first wave)."""
    store = Store(spec.db, spec.table_prefix)
    try:
        ats = sorted(at for _, at, _ in store.recent_usage(spec.job_id, started_wall - 1))
    finally:
        store.close()
    best = 0
    j = 0
    for i, at in enumerate(ats):
        while ats[j] <= at - 10.0:
            j += 1
        best = max(best, i - j + 1)
    return best / 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="Length of the pacing run.")
    parser.add_argument("--tpm", type=int, default=200_000, help="The sim's TPM limit.")
    parser.add_argument("--stated-tpm", type=int, default=2_000_000, help="For extrapolation.")
    args = parser.parse_args()
    stack = DrillStack.start(args.tpm)
    control = SimControl(stack.sim_url)
    try:
        batched = make_job(stack, "ratio20", 2000, args.tpm, 20, "batch")
        single = make_job(stack, "ratio1", 200, args.tpm, 1, "batch-single")
        tpr20, _ = tokens_per_record(stack, batched)
        tpr1, _ = tokens_per_record(stack, single)
        print(f"tokens per record: {tpr20:.1f} at 20 per call, {tpr1:.1f} at 1 per call "
              f"-> {tpr1 / tpr20:.2f}x fewer")  # fmt: skip
        # Let the sim's bucket refill, so the run starts as a fresh job would.
        time.sleep(40.0)
        records = int(args.tpm * 0.97 * (args.minutes + 1.0) / tpr20)
        spec = make_job(stack, "steady", records, args.tpm, 20, "batch")
        est = asyncio.run(estimate_job(spec, stack.base_url, stack.key, calls=3))
        asyncio.run(control.reset_stats())
        started_wall, started = time.time(), time.monotonic()
        totals = asyncio.run(run_job(spec, stack.base_url, stack.key, "bench"))
        measured_min = (time.monotonic() - started) / 60.0
        stats = asyncio.run(control.stats())
        share, steady_min = window_share(spec, args.tpm, started_wall)
        tokens = totals.prompt_tokens + totals.completion_tokens
        print(f"pacing: {records:,} records in {measured_min:.2f} min; tokens in the last 60 s "
              f"held at {share:.1%} of {args.tpm:,} TPM on average over {steady_min:.2f} min; "
              f"429s from the provider: {stats['rate_limited']}")  # fmt: skip
        est_tokens = est.prompt_tokens + est.completion_tokens
        print(f"estimate (bound by {est.bound}): {est.minutes:.2f} min vs {measured_min:.2f} "
              f"measured "
              f"({est.minutes / measured_min - 1:+.1%}); {est_tokens:,} tokens vs {tokens:,} "
              f"({est_tokens / max(1, tokens) - 1:+.1%})")  # fmt: skip
        used = 0.97 if math.isnan(share) else share  # NaN when the run was under a minute
        per_hour = used * args.stated_tpm * 60 / tpr20
        per_hour_1 = used * args.stated_tpm * 60 / tpr1
        capacity = calls_per_s(spec, started_wall)
        need = per_hour / 3600 / spec.records_per_call
        print(f"two million records at {args.stated_tpm:,} TPM: {per_hour:,.0f} records/hour, "
              f"{2e6 / per_hour:.1f} h (one record per call: {per_hour_1:,.0f}/hour, "
              f"{2e6 / per_hour_1:.1f} h); that pace needs {need:.1f} calls/s, one worker "
              f"process here managed {capacity:.1f} calls/s at {spec.workers} in flight, so "
              f"{math.ceil(need / capacity) if capacity else '?'} worker(s)")  # fmt: skip
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
