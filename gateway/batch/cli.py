"""``tiergate batch``: run, estimate, export and report batch jobs; the crash drill.

Every command takes the job file (``--job``) and/or flags that override it; the gateway URL
and key come from ``--gateway``/``--key`` or ``TIERGATE_URL``/``TIERGATE_KEY`` (the openai SDK's
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` also work, so a job can run against OpenAI directly).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from gateway.batch.spec import JobInvalid, JobSpec, load_job

batch_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Batch jobs.")

JobOpt = Annotated[Path | None, typer.Option("--job", help="The YAML job file.")]
InputOpt = Annotated[str | None, typer.Option(help="Input records: JSONL or CSV file.")]
SqlOpt = Annotated[str | None, typer.Option(help="Input records: a SQL query (on --input-db).")]
InputDbOpt = Annotated[str | None, typer.Option(help="Database URL the query runs on.")]
JobIdOpt = Annotated[str | None, typer.Option(help="Job id (the checkpoint's name).")]
IdOpt = Annotated[str | None, typer.Option(help="The records' id field.")]
FieldsOpt = Annotated[str | None, typer.Option(help="Prompt fields, comma-separated.")]
TaskOpt = Annotated[str | None, typer.Option(help="classify, extract or template.")]
LabelsOpt = Annotated[str | None, typer.Option(help="Labels, comma-separated (classify).")]
SchemaOpt = Annotated[str | None, typer.Option(help="JSON schema (extract), or @file.")]
TemplateOpt = Annotated[str | None, typer.Option(help="Instruction text (template task).")]
AliasOpt = Annotated[str | None, typer.Option(help="The gateway alias (model) to use.")]
SecondOpt = Annotated[str | None, typer.Option(help="A second alias: disagreement detection.")]
TieOpt = Annotated[str | None, typer.Option(help="A third alias that breaks ties.")]
PerCallOpt = Annotated[int | None, typer.Option(help="Records per call.")]
TpmOpt = Annotated[int | None, typer.Option(help="Provider tokens per minute for this job.")]
RpmOpt = Annotated[int | None, typer.Option(help="Provider requests per minute.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Concurrent calls in this process.")]
DbOpt = Annotated[str | None, typer.Option(help="Checkpoint database URL (SQLite/PostgreSQL).")]
GatewayOpt = Annotated[str | None, typer.Option(help="Gateway base URL (ends in /v1).")]
KeyOpt = Annotated[str | None, typer.Option(help="API key for the gateway.")]


def _overrides(**flags: Any) -> dict[str, Any]:
    out = dict(flags)
    if out.get("fields") is not None:
        out["fields"] = [f.strip() for f in out["fields"].split(",") if f.strip()]
    if out.get("labels") is not None:
        out["labels"] = [f.strip() for f in out["labels"].split(",") if f.strip()]
    schema = out.pop("schema", None)
    if schema is not None:
        text = Path(schema[1:]).read_text() if schema.startswith("@") else schema
        out["schema"] = orjson.loads(text)
    return out


_FLAG_NAMES = frozenset({"tpm", "rpm", "schema"})


def _job_flags(names: dict[str, Any]) -> dict[str, Any]:
    """The command's parameters that are job fields (its other locals are not)."""
    return {k: v for k, v in names.items() if k in JobSpec.model_fields or k in _FLAG_NAMES}


def _spec(job: Path | None, **flags: Any) -> JobSpec:
    try:
        return load_job(job, _overrides(**flags))
    except (JobInvalid, OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"invalid job: {exc}", err=True)
        raise typer.Exit(2) from None


def _endpoint(gateway: str | None, key: str | None) -> tuple[str, str]:
    url = gateway or os.environ.get("TIERGATE_URL") or os.environ.get("OPENAI_BASE_URL")
    api_key = key or os.environ.get("TIERGATE_KEY") or os.environ.get("OPENAI_API_KEY")
    if not url or not api_key:
        typer.echo("give --gateway and --key (or TIERGATE_URL and TIERGATE_KEY)", err=True)
        raise typer.Exit(2)
    return url, api_key


def default_worker_name() -> str:
    """Stable across restarts of the same worker (so it takes its own claims back at once):
    the host name, plus the Kubernetes Indexed Job's index when there is one."""
    index = os.environ.get("JOB_COMPLETION_INDEX")
    host = socket.gethostname()
    return f"{host}-{index}" if index is not None else host


@batch_app.command("estimate")
def estimate_cmd(
    job: JobOpt = None,
    input: InputOpt = None,
    sql: SqlOpt = None,
    input_db: InputDbOpt = None,
    job_id: JobIdOpt = None,
    id_field: IdOpt = None,
    fields: FieldsOpt = None,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    schema: SchemaOpt = None,
    template: TemplateOpt = None,
    alias: AliasOpt = None,
    second_alias: SecondOpt = None,
    tie_breaker: TieOpt = None,
    records_per_call: PerCallOpt = None,
    tpm: TpmOpt = None,
    rpm: RpmOpt = None,
    workers: WorkersOpt = None,
    db: DbOpt = None,
    gateway: GatewayOpt = None,
    key: KeyOpt = None,
    sample_calls: Annotated[int, typer.Option(help="Calls to sample (0: none).")] = 3,
) -> None:
    """Print calls, tokens, cost and time for the pending records (samples a call or two)."""
    from gateway.batch.runner import estimate_job

    spec = _spec(job, **_job_flags(locals()))
    url, api_key = _endpoint(gateway, key) if sample_calls else ("", "")
    result = asyncio.run(estimate_job(spec, url, api_key, sample_calls))
    for line in result.lines():
        typer.echo(line)


@batch_app.command("run")
def run_cmd(
    job: JobOpt = None,
    input: InputOpt = None,
    sql: SqlOpt = None,
    input_db: InputDbOpt = None,
    job_id: JobIdOpt = None,
    id_field: IdOpt = None,
    fields: FieldsOpt = None,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    schema: SchemaOpt = None,
    template: TemplateOpt = None,
    alias: AliasOpt = None,
    second_alias: SecondOpt = None,
    tie_breaker: TieOpt = None,
    records_per_call: PerCallOpt = None,
    tpm: TpmOpt = None,
    rpm: RpmOpt = None,
    workers: WorkersOpt = None,
    db: DbOpt = None,
    gateway: GatewayOpt = None,
    key: KeyOpt = None,
    worker: Annotated[str | None, typer.Option(help="This worker's name (stable).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Skip the cost confirmation.")] = False,
    no_estimate: Annotated[bool, typer.Option(help="Start without the estimate.")] = False,
    output: Annotated[Path | None, typer.Option(help="Export results here (.jsonl/.csv).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress line.")] = False,
    retry_failed: Annotated[
        bool, typer.Option(help="Give records that failed max_attempts one more try.")
    ] = False,
) -> None:
    """Run (or resume) a job: estimate, confirm above the cost threshold, run, report."""
    from gateway.batch.progress import Progress
    from gateway.batch.results import export, report
    from gateway.batch.runner import estimate_job, run_job
    from gateway.batch.store import Store

    spec = _spec(job, **_job_flags(locals()))
    url, api_key = _endpoint(gateway, key)
    if retry_failed:
        store = Store(spec.db, spec.table_prefix)
        try:
            typer.echo(
                f"{store.retry_failed(spec.job_id):,} failed records pending again", err=True
            )
        finally:
            store.close()
    if not no_estimate:
        est = asyncio.run(estimate_job(spec, url, api_key, 3))
        for line in est.lines():
            typer.echo(line, err=True)
        above = est.cost_usd > spec.confirm_above_usd and not yes
        question = f"estimated ${est.cost_usd:,.2f} is above ${spec.confirm_above_usd:,.2f}; run?"
        if above and (not sys.stdin.isatty() or not typer.confirm(question)):
            typer.echo("not started (pass --yes to skip this question)", err=True)
            raise typer.Exit(1)
    progress = None if quiet else Progress()
    asyncio.run(run_job(spec, url, api_key, worker or default_worker_name(), progress))
    store = Store(spec.db, spec.table_prefix)
    try:
        for line in report(spec, store):
            typer.echo(line)
        if output is not None:
            rows = export(spec, store, output)
            typer.echo(f"exported {rows:,} rows to {output}")
    finally:
        store.close()


@batch_app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Argument(help="Results file (.jsonl or .csv).")],
    job: JobOpt = None,
    input: InputOpt = None,
    sql: SqlOpt = None,
    job_id: JobIdOpt = None,
    db: DbOpt = None,
) -> None:
    """Write one row per record with its answer(s) and provenance."""
    from gateway.batch.results import export
    from gateway.batch.store import Store

    spec = _spec(job, input=input, sql=sql, job_id=job_id, db=db)
    store = Store(spec.db, spec.table_prefix)
    try:
        typer.echo(f"exported {export(spec, store, output):,} rows to {output}")
    finally:
        store.close()


@batch_app.command("report")
def report_cmd(
    job: JobOpt = None,
    input: InputOpt = None,
    sql: SqlOpt = None,
    job_id: JobIdOpt = None,
    db: DbOpt = None,
) -> None:
    """Progress and totals of a job from its checkpoint store (disagreements included)."""
    from gateway.batch.results import report
    from gateway.batch.store import Store

    spec = _spec(job, input=input, sql=sql, job_id=job_id, db=db)
    store = Store(spec.db, spec.table_prefix)
    try:
        for line in report(spec, store):
            typer.echo(line)
    finally:
        store.close()


@batch_app.command("drill")
def drill_cmd(
    records: Annotated[int, typer.Option(help="Records in the drill's job.")] = 1000,
    crashes: Annotated[int, typer.Option(help="SIGKILLs of a worker at random moments.")] = 5,
    gateway: Annotated[
        str | None, typer.Option(help="A running gateway (default: start a sim and one).")
    ] = None,
    key: KeyOpt = None,
    sim: Annotated[str | None, typer.Option(help="The sim behind --gateway (its stats).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the job.")] = 1,
    db: Annotated[
        str | None, typer.Option(help="Checkpoint DB (PostgreSQL for several workers).")
    ] = None,
    tpm: Annotated[int, typer.Option(help="The sim's TPM limit, also the job's.")] = 200_000,
    records_per_call: Annotated[int, typer.Option(help="Records per call.")] = 20,
    concurrency: Annotated[int, typer.Option(help="Concurrent calls per worker.")] = 8,
    seed: Annotated[int, typer.Option(help="Data, sim answers and kill times.")] = 0,
    keep: Annotated[
        bool, typer.Option(help="Keep the checkpoint tables and the working directory.")
    ] = False,
) -> None:
    """Kill the worker K times at random moments, resume, check every record; last line JSON."""
    from gateway.batch.drill import DrillOptions, run_drill

    if workers > 1 and (db is None or db.startswith("sqlite")):
        typer.echo("several workers need a PostgreSQL --db", err=True)
        raise typer.Exit(2)
    opts = DrillOptions(
        records, crashes, workers, db, gateway, key, sim, tpm, records_per_call, concurrency,
        seed, keep,
    )  # fmt: skip
    figures = run_drill(opts)
    typer.echo(orjson.dumps(figures).decode())
    ok = figures["lost"] == 0 and figures["duplicated"] == 0
    raise typer.Exit(0 if ok else 1)
