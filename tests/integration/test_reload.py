"""Rules reload on change: a gateway whose rules file is a ConfigMap-style mount (``rules.yaml ->
..data/rules.yaml``, ``..data -> ..<timestamp>``) picks up a symlink swap by itself, keeps serving
in-flight calls on the old rules, rejects a bad file and keeps the old rules; ``check-config
--diff`` compares a file with the running gateway (admin API) or with another file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import (
    ADMIN_KEY,
    KEY,
    ROOT,
    free_port,
    key_hash,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.integration


def rules(sim_port: int, aliases: str, version: str) -> str:
    sim = f"http://127.0.0.1:{sim_port}/v1"
    return (
        f"version: {version}\n"
        "targets:\n"
        f"  a: {{provider: openai, model: sim-fast, api_base: '{sim}'}}\n"
        f"  slow: {{provider: openai, model: sim-fast, api_base: '{sim}',"
        " headers: {x-sim-fault: slow-first-token, x-sim-ttft-ms: '1500'},"
        " timeouts: {first_token_s: 10, total_s: 20}}\n"
        f"aliases:\n{aliases}"
        f"keys:\n  - {{id: k, sha256: {key_hash(KEY)}}}\n"
        f"admin:\n  key_sha256: {key_hash(ADMIN_KEY)}\n"
    )


class ConfigMapDir:
    """A directory laid out as the kubelet lays out a ConfigMap volume, updated the same way."""

    def __init__(self, root: Path, text: str) -> None:
        self.root = root
        self.n = 0
        root.mkdir()
        self.swap(text)
        (root / "rules.yaml").symlink_to("..data/rules.yaml")

    @property
    def path(self) -> Path:
        return self.root / "rules.yaml"

    def swap(self, text: str) -> None:
        self.n += 1
        version_dir = self.root / f"..2026_11_29_{self.n:04d}"
        version_dir.mkdir()
        (version_dir / "rules.yaml").write_text(text)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version_dir.name)
        os.replace(tmp, self.root / "..data")  # the atomic step


def start_gateway(rules_path: Path, work: Path) -> tuple[int, subprocess.Popen[bytes], Path]:
    port = free_port()
    env = dict(
        os.environ,
        GATEWAY_RULES=str(rules_path),
        GATEWAY_PORT=str(port),
        GATEWAY_DATA_DIR=str(work / "data"),
        GATEWAY_WATCH_RULES_S="0.2",
    )
    log_path = work / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc, timeout_s=60)
    return port, proc, log_path


@pytest.fixture
def mounted(tmp_path: Path, sim_port: int) -> Iterator[tuple[ConfigMapDir, int, Path]]:
    config = ConfigMapDir(tmp_path / "rules", rules(sim_port, "  one: {targets: [a]}\n", "v1"))
    port, proc, log_path = start_gateway(config.path, tmp_path)
    try:
        yield config, port, log_path
    finally:
        stop(proc)


def wait_until(predicate: object, what: str, limit_s: float = 15.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not seen within {limit_s} s: {what}")


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def test_symlink_swap_reloads_and_a_bad_file_keeps_the_old_rules(
    mounted: tuple[ConfigMapDir, int, Path], sim_port: int
) -> None:
    config, port, log_path = mounted
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)

    def aliases() -> set[str]:
        return {m.id for m in client.models.list()}

    assert aliases() == {"one"}
    config.swap(rules(sim_port, "  one: {targets: [a]}\n  two: {targets: [a]}\n", "v2"))
    wait_until(lambda: aliases() == {"one", "two"}, "the swapped rules")
    raw = client.chat.completions.with_raw_response.create(
        model="two", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-tiergate-config-version"] == "v2"

    config.swap("targets: {}\naliases: {}\n")  # invalid: rejected, v2 stays
    wait_until(lambda: "reload rejected, keeping config v2" in log_path.read_text(), "rejection")
    assert aliases() == {"one", "two"}
    assert 'tiergate_config_reloads_total{outcome="rejected"} 1.0' in metrics(port)
    assert 'tiergate_config_reloads_total{outcome="ok"} 1.0' in metrics(port)

    config.swap(rules(sim_port, "  three: {targets: [a]}\n", "v3"))  # a good file again
    wait_until(lambda: aliases() == {"three"}, "recovery after a bad file")


def test_in_flight_calls_finish_on_the_old_rules(
    mounted: tuple[ConfigMapDir, int, Path], sim_port: int
) -> None:
    config, port, _ = mounted
    config.swap(rules(sim_port, "  one: {targets: [a]}\n  slow: {targets: [slow]}\n", "v2"))
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
    wait_until(lambda: "slow" in {m.id for m in client.models.list()}, "the slow alias")

    result: dict[str, object] = {}

    def call() -> None:
        stream = client.chat.completions.create(
            model="slow", stream=True, messages=[{"role": "user", "content": "x"}]
        )
        result["text"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)  # the call is waiting for its first token (1.5 s) on the v2 pipeline
    config.swap(rules(sim_port, "  one: {targets: [a]}\n", "v3"))  # the alias is gone
    wait_until(lambda: {m.id for m in client.models.list()} == {"one"}, "v3")
    worker.join(timeout=30)
    assert result.get("text"), "the in-flight call completed on the rules it started with"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "x"}])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_diff_against_the_running_gateway_and_a_file(
    mounted: tuple[ConfigMapDir, int, Path], sim_port: int, tmp_path: Path
) -> None:
    _, port, _ = mounted
    new = tmp_path / "new.yaml"
    new.write_text(rules(sim_port, "  one: {targets: [a]}\n  two: {targets: [a]}\n", "v9"))
    url = f"http://127.0.0.1:{port}"
    out = run_cli("check-config", str(new), "--diff", url, "--admin-key", ADMIN_KEY)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"change(s) against running gateway {url}" in out.stdout
    assert "+ aliases.two.targets: " in out.stdout
    assert "version" not in out.stdout.split("change(s)")[1], "the version label is no change"

    same = run_cli("check-config", str(new), "--diff", str(new))
    assert "no changes against" in same.stdout

    refused = run_cli("check-config", str(new), "--diff", url, "--admin-key", "wrong-key")
    assert refused.returncode == 2
    assert "HTTP 401" in refused.stdout
