"""The batch client against a real gateway and sim, with the openai SDK: a job end to end, resume
after a SIGKILL of the worker process, and two workers sharing one job on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from gateway.batch.results import export, report, result_rows
from gateway.batch.runner import estimate_job, run_job
from gateway.batch.spec import JobSpec, load_job
from gateway.batch.store import DONE, Store

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("BATCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def write_records(path: Path, n: int) -> None:
    with path.open("wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps({"id": f"q{i}", "text": f"survey answer number {i}"}) + b"\n")


def job(tmp_path: Path, n: int, **fields: object) -> tuple[JobSpec, Path]:
    data = tmp_path / "records.jsonl"
    write_records(data, n)
    raw: dict[str, object] = {
        "job_id": "t" + secrets.token_hex(4),
        "input": str(data),
        "labels": ["positive", "negative", "neutral", "other"],
        "alias": "fast",
        "records_per_call": 5,
        "workers": 4,
        "db": f"sqlite:///{tmp_path / 'ckpt.db'}",
        "price": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
    } | fields
    path = tmp_path / "job.yaml"
    path.write_text(orjson.dumps(raw).decode())
    return load_job(path, {}), path


def check_every_record(spec: JobSpec, n: int) -> dict[str, int]:
    store = Store(spec.db, spec.table_prefix)
    try:
        rows = list(result_rows(spec, store))
        done = sum(r["status"] == DONE for r in rows)
        totals = store.call_totals(spec.job_id)
        workers = Counter(r["provenance"]["worker"] for r in rows)
    finally:
        store.close()
    assert sorted(r["id"] for r in rows) == sorted(f"q{i}" for i in range(n))
    return {"done": done, "duplicated": int(totals["duplicates"]), "workers": len(workers)}


def test_a_small_job_runs_end_to_end_with_provenance(gateway, tmp_path: Path) -> None:
    spec, _ = job(tmp_path, 40)
    est = asyncio.run(estimate_job(spec, gateway.base_url, gateway.key, calls=1))
    assert est.records == 40 and est.calls >= 8 and est.cost_usd > 0
    totals = asyncio.run(run_job(spec, gateway.base_url, gateway.key, "w1"))
    assert totals.replayed >= 1  # the estimate's sample call, not paid twice
    store = Store(spec.db, spec.table_prefix)
    try:
        rows = list(result_rows(spec, store))
        assert len(rows) == 40 and all(r["status"] == DONE for r in rows)
        assert {r["answer"] for r in rows} <= {"positive", "negative", "neutral", "other"}
        fresh = [r["provenance"] for r in rows if r["provenance"]["target"]]
        assert fresh and all(p["target"] == "ok" for p in fresh)
        assert all(r["provenance"]["model"] == "sim-fast" for r in rows)
        assert all(p["config_version"] for p in fresh)
        assert all(r["provenance"]["template_hash"] for r in rows)
        out = tmp_path / "out.jsonl"
        assert export(spec, store, out) == 40
        assert len(out.read_text().splitlines()) == 40
        assert export(spec, store, tmp_path / "out.csv") == 40
        assert any("40 done" in line for line in report(spec, store))
    finally:
        store.close()


def test_two_models_keep_both_labels_and_list_disagreements(gateway, tmp_path: Path) -> None:
    spec, _ = job(tmp_path, 30, second_alias="smart", tie_breaker="fast")
    asyncio.run(run_job(spec, gateway.base_url, gateway.key, "w1"))
    store = Store(spec.db, spec.table_prefix)
    try:
        rows = list(result_rows(spec, store))
        assert all(r["answer_fast"] and r["answer_smart"] for r in rows)
        for r in rows:
            assert r["disagree"] == (r["answer_fast"] != r["answer_smart"])
        assert any("disagreements" in line for line in report(spec, store))
    finally:
        store.close()


def worker(job_file: Path, gw, name: str, *flags: str) -> subprocess.Popen[bytes]:
    """A worker process; its stderr goes to a file beside the job (no pipe left open)."""
    cmd = [
        sys.executable, "-m", "gateway", "batch", "run", "--job", str(job_file),
        "--gateway", gw.base_url, "--key", gw.key, "--worker", name, "--yes",
        "--no-estimate", "--quiet", *flags,
    ]  # fmt: skip
    with (job_file.parent / f"{name}.log").open("ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)


def finish(proc: subprocess.Popen[bytes], job_file: Path, name: str) -> None:
    code = proc.wait(timeout=180)
    assert code == 0, (job_file.parent / f"{name}.log").read_text()


def done_count(spec: JobSpec) -> int:
    store = Store(spec.db, spec.table_prefix)
    try:
        return sum(c["done"] for c in store.counts(spec.job_id).values())
    finally:
        store.close()


def test_resume_after_sigkill_loses_and_repeats_nothing(gateway, tmp_path: Path) -> None:
    n = 400
    # A tight TPM so the run lasts long enough to be killed in the middle.
    spec, job_file = job(tmp_path, n, limits={"tpm": 12_000})
    proc = worker(job_file, gateway, "w1")
    while done_count(spec) < 60 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done_count(spec) < n  # killed in the middle
    finish(worker(job_file, gateway, "w1", "--tpm", "10000000"), job_file, "w1")
    result = check_every_record(spec, n)
    assert result["done"] == n and result["duplicated"] == 0


@pytest.fixture
def pg_db() -> str:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    finally:
        engine.dispose()
    return PG_URL


def test_two_workers_share_one_job_on_postgresql(gateway, tmp_path: Path, pg_db: str) -> None:
    n = 300
    prefix = f"tgt_{secrets.token_hex(4)}_"
    spec, job_file = job(tmp_path, n, db=pg_db, table_prefix=prefix, limits={"tpm": 20_000})
    Store(spec.db, spec.table_prefix).close()  # create the tables once, before both start
    procs = [worker(job_file, gateway, f"pg-{i}") for i in range(2)]
    try:
        while done_count(spec) < 60 and procs[0].poll() is None:
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)  # one dies; its groups go to the other or to it
        procs[0].wait()
        procs[0] = worker(job_file, gateway, "pg-0", "--tpm", "10000000")
        for i, proc in enumerate(procs):
            finish(proc, job_file, f"pg-{i}")
        result = check_every_record(spec, n)
        assert result["done"] == n and result["duplicated"] == 0
        assert result["workers"] == 2
    finally:
        store = Store(spec.db, spec.table_prefix)
        store.drop()
        store.close()


def test_the_gateways_rate_limit_headers_set_the_pace(spawn_gateway, sim_port, tmp_path) -> None:
    """A key with a TPM quota: the gateway answers with x-ratelimit-* and the worker paces
    against that limit though the job names none."""
    import hashlib

    from gateway.batch.pacing import Pacer
    from gateway.batch.runner import Worker, load_job_records, make_client

    key = "tg-test-batch-quota-key"
    rules = f"""
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"}}
aliases:
  fast: {{targets: [ok]}}
keys:
  - {{id: quota, team: batch, sha256: {hashlib.sha256(key.encode()).hexdigest()},
     quota: {{tpm: 50000}}}}
"""
    gw = spawn_gateway(rules)
    spec, _ = job(tmp_path, 30)
    store = Store(spec.db, spec.table_prefix)

    async def run() -> Pacer:
        load_job_records(spec, store)
        async with make_client(gw.base_url, key) as client:
            pacer = Pacer(tpm=None, rpm=None, max_concurrency=2)
            await Worker(spec, store, client, "w1", pacer).run()
            return pacer

    try:
        pacer = asyncio.run(run())
        assert pacer.tpm == 50_000
        assert store.counts(spec.job_id)["fast"]["done"] == 30
    finally:
        store.close()


def test_the_cli_asks_before_an_expensive_run_and_exports(gateway, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.batch.cli import batch_app

    _, job_file = job(tmp_path, 20, confirm_above_usd=0.0)
    args = ["run", "--job", str(job_file), "--gateway", gateway.base_url, "--key", gateway.key,
            "--quiet"]  # fmt: skip
    refused = CliRunner().invoke(batch_app, args)
    assert refused.exit_code == 1
    assert "not started" in refused.output
    out = tmp_path / "out.csv"
    done = CliRunner().invoke(batch_app, [*args, "--yes", "--output", str(out)])
    assert done.exit_code == 0, done.output
    assert "20 done" in done.output
    assert len(out.read_text().splitlines()) == 21  # a header and one row per record
