"""A simulated provider with a TPM limit and a gateway in front of it, as child processes, plus
a synthetic classification data set: what the crash drill and ``bench.batch`` run against.

Use ``DrillStack.start(tpm=...)`` then ``stop()``. The sim serves two models with the same
behaviour and separate limits: ``sim-batch`` (alias ``batch``) for the job and ``sim-batch-1``
(alias ``batch-single``) for the one-record-per-call comparison, so neither eats the other's
allowance. The gateway's state is an embedded Valkey in the stack's directory.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

DRILL_KEY = "tg-batch-drill-local-key"
LABELS = {
    "billing": "Questions or complaints about invoices, charges, refunds, prices, payment "
    "methods, failed payments, subscriptions and plan changes. Use it when money or an "
    "invoice is the main subject, even if the customer is also angry about something else.",
    "delivery": "Anything about shipping, parcels, couriers, delivery dates, tracking numbers, "
    "lost or damaged packages and returns sent by post. Use it when the physical movement "
    "of goods is the problem.",
    "product": "Remarks on the product itself: quality, features, defects, size, colour, how "
    "it works, how it compares with other products. Use it when the object or service "
    "delivered is what the text is about.",
    "account": "Log-in problems, passwords, two-factor codes, profile data, email changes, "
    "account deletion and privacy requests about personal data held in the account.",
    "support": "The experience with customer service: waiting times, rude or helpful agents, "
    "unanswered emails, chat and phone support. Use it when the text judges the help "
    "received rather than the product.",
    "praise": "Purely positive feedback with no request and no problem: thanks, compliments, "
    "recommendations to friends. Mixed feedback with a problem goes to the problem's label.",
    "feature_request": "Suggestions for something new: a feature, an option, a product "
    "variant, a payment method or a delivery option that does not exist yet.",
    "other": "Everything that fits none of the labels above, including spam, empty or "
    "unintelligible text, and questions unrelated to the company.",
}
INSTRUCTION = (
    "You label customer feedback from our quarterly survey. Read each record, decide which "
    "single label fits its main subject best, and follow the label definitions strictly. "
    "When a record mentions several subjects, choose the one the customer spends most words "
    "on. Never invent a label. Do not explain your choice."
)
PHRASES = (
    "my order arrived late and the box was damaged but support replaced it quickly",
    "invoice charged twice refund please login password reset code never came",
    "great product love the colour size too small courier lost parcel tracking number",
    "wrong agent was rude waited hours on the phone please add dark mode and paypal",
    "thanks team recommended to friends subscription cancelled without notice",
    "price went up again app crashes on start",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"a drill process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout_s} s")


def write_records(path: Path, count: int, seed: int) -> None:
    """``count`` survey-like records ``{"id", "text"}`` (12-20 words each), by seed."""
    rng = random.Random(seed)
    words = " ".join(PHRASES).split()
    with path.open("wb") as fh:
        for i in range(count):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(12, 20)))
            fh.write(orjson.dumps({"id": f"r{i:06d}", "text": text}) + b"\n")


def job_yaml(
    job_id: str,
    input_path: Path,
    db: str,
    tpm: int,
    alias: str = "batch",
    records_per_call: int = 20,
    workers: int = 8,
    prefix: str = "tg_batch_",
) -> str:
    """The drill's job: classify the records into the eight labels above."""
    job = {
        "job_id": job_id,
        "input": str(input_path),
        "id_field": "id",
        "fields": ["text"],
        "task": "classify",
        "template": INSTRUCTION,
        "labels": [{"name": k, "description": v} for k, v in LABELS.items()],
        "alias": alias,
        "records_per_call": records_per_call,
        "limits": {"tpm": tpm},
        "workers": workers,
        "lease_s": 30,
        "price": {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60},
        "db": db,
        "table_prefix": prefix,
    }
    return orjson.dumps(job).decode()  # JSON is YAML


def _sim_yaml(tpm: int, seed: int, latency_ms: int) -> str:
    model = (
        f"{{latency_ms: {latency_ms}, latency_jitter_ms: {latency_ms}, "
        f"completion_tokens: 16, tpm_limit: {tpm}, context_window_tokens: 128000}}"
    )
    return f"seed: {seed}\nmodels:\n  sim-batch: {model}\n  sim-batch-1: {model}\n"


def _rules_yaml(sim_port: int) -> str:
    digest = hashlib.sha256(DRILL_KEY.encode()).hexdigest()
    api = f"http://127.0.0.1:{sim_port}/v1"
    target = (
        "provider: openai, api_base: {api}, model: {model}, "
        "price: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}, "
        "timeouts: {{connect_s: 2, first_token_s: 30, total_s: 60}}"
    )
    return (
        "version: batch-drill-1\ntargets:\n"
        f"  batch: {{{target.format(api=api, model='sim-batch')}}}\n"
        f"  batch-single: {{{target.format(api=api, model='sim-batch-1')}}}\n"
        "aliases:\n  batch: {targets: [batch]}\n  batch-single: {targets: [batch-single]}\n"
        f"keys:\n  - {{id: drill, team: data, sha256: {digest}}}\n"
        "governance:\n  idempotency: {in_flight: wait, wait_s: 60}\n"
    )


@dataclass
class DrillStack:
    work: Path
    sim: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    sim_url: str
    base_url: str
    key: str = DRILL_KEY

    @classmethod
    def start(cls, tpm: int, seed: int = 0, latency_ms: int = 200) -> DrillStack:
        work = Path(tempfile.mkdtemp(prefix="tg-batch-drill-"))
        sim_port, gw_port = free_port(), free_port()
        (work / "sim.yaml").write_text(_sim_yaml(tpm, seed, latency_ms))
        (work / "rules.yaml").write_text(_rules_yaml(sim_port))
        py = sys.executable
        with (work / "sim.log").open("wb") as log:
            sim = subprocess.Popen(
                [py, "-m", "gateway", "sim", "--port", str(sim_port), "--config", "sim.yaml"],
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        env = {
            "GATEWAY_RULES": str(work / "rules.yaml"),
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_DATA_DIR": str(work / "data"),
            "GATEWAY_REQUEST_LOG": "false",
        }
        with (work / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen(
                [py, "-m", "gateway", "serve"],
                cwd=work,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        stack = cls(
            work,
            sim,
            gateway,
            f"http://127.0.0.1:{sim_port}",
            f"http://127.0.0.1:{gw_port}/v1",
        )
        try:
            wait_port(sim_port, sim)
            wait_port(gw_port, gateway)
        except BaseException:
            stack.stop()
            raise
        return stack

    def stop(self, keep: bool = False) -> None:
        """Stop both processes; remove the working directory unless ``keep``."""
        for proc in (self.gateway, self.sim):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.gateway, self.sim):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)
