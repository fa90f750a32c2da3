"""Start Tiergate as a target of the shared gateway benchmark (``../shared/bench/bench.py``).

    python -m bench.shared_target --mock-base {mock_base} --port {port} [--src DIR]

Writes a rules file (one target, model ``mock`` at the mock's OpenAI base; alias ``mock``; the
public demo key ``tg-demo-local-only-0123456789abcdef``; with ``--governance``, that key carries
RPM/TPM limits and budgets, its team a budget, and a global quota applies) into a fresh
temporary directory and execs ``python -m gateway serve`` there, as shipped: auth, validation,
metrics and the JSON request log (stdout) on, embedded Valkey under the temporary directory.
Exec keeps the process (and its session) the gateway itself, so the harness measures and stops
only the gateway and its Valkey child. ``--src`` runs the gateway from another source tree (a
snapshot of a commit).

    ./bench.py --targets direct,tiergate \\
      --add-target tiergate http://127.0.0.1:{port}/v1 \\
        'sh -c "cd <checkout> && exec .venv/bin/python -m bench.shared_target \\
           --mock-base {mock_base} --port {port}"' \\
      --target-header tiergate 'authorization: Bearer tg-demo-local-only-0123456789abcdef' \\
      --target-cpus tiergate 1

The harness runs the command under taskset without a shell, hence ``sh -c`` for the ``cd``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

KEY_SHA256 = "0834a7b8c434d0eab84314abc95dd04d5e80d018e057af941749b9d18b525dc5"


BIG = 10**12
# --governance full: what a real shared endpoint runs. The key has RPM and TPM limits, daily token
# and monthly USD budgets; its team has a daily USD budget; a global RPM quota applies to all.
# Limits are far above what a run can reach: every call is checked and charged, none refused.
GOVERNANCE = (
    f"    quota: {{rpm: {BIG}, tpm: {BIG}, budgets: {{tokens_per_day: {BIG}, "
    f"usd_per_month: {BIG}}}}}\n"
    "governance:\n"
    f"  teams: {{bench: {{budgets: {{usd_per_day: {BIG}}}}}}}\n"
    f"  global_quota: {{rpm: {BIG}}}\n"
)


def rules_yaml(mock_base: str, governance: bool = False) -> str:
    return (
        "version: shared-bench\n"
        "targets:\n"
        f'  m: {{provider: openai, model: mock, api_base: "{mock_base}",'
        " price: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}\n"
        "aliases:\n"
        "  mock: {targets: [m]}\n"
        "keys:\n"
        f"  - id: bench\n    team: bench\n    sha256: {KEY_SHA256}\n"
        + (GOVERNANCE if governance else "")
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mock-base", required=True, help="the mock's OpenAI base, http://.../v1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--src", type=Path, help="run the gateway from this source tree")
    ap.add_argument(
        "--governance",
        action="store_true",
        help="the key gets RPM/TPM limits and budgets, a team budget and a global quota",
    )
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tiergate-shared-bench-"))
    rules = work / "rules.yaml"
    rules.write_text(rules_yaml(a.mock_base.rstrip("/"), a.governance))
    env = dict(os.environ)
    env.update(
        GATEWAY_RULES=str(rules),
        GATEWAY_PORT=str(a.port),
        GATEWAY_HOST=a.host,
        GATEWAY_DATA_DIR=str(work / "data"),
    )
    if a.src:
        env["PYTHONPATH"] = str(a.src.resolve())
    print(f"bench.shared_target: rules {rules}, gateway on {a.host}:{a.port}", flush=True)
    os.chdir(work)
    os.execve(sys.executable, [sys.executable, "-m", "gateway", "serve"], env)


if __name__ == "__main__":
    main()
