"""The official ``openai`` npm package (Node) against a running gateway: chat, a chat stream,
and the Responses API (JSON, retrieve, stream).

The package is installed by this test (``npm ci`` from the committed lock file into
``tests/node/node_modules``). Node is required: without it the test fails, it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="session")
def node_package() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the Node client test (Node >= 20)")
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    wanted = lock["packages"]["node_modules/openai"]["version"]
    installed = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return NODE_DIR


def test_openai_npm_package(gateway, node_package: Path) -> None:
    env = dict(os.environ, TIERGATE_BASE_URL=gateway.base_url, TIERGATE_KEY=gateway.key)
    done = subprocess.run(
        ["node", "clients.mjs"],
        cwd=node_package,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["chat"]
    assert seen["chat_stream"] == seen["chat"]
    assert seen["chat_stream_usage"]["completion_tokens"] > 0
    assert seen["response_id"].startswith("resp_")
    assert seen["response_text"] and seen["retrieved_text"] == seen["response_text"]
    assert seen["response_usage"]["output_tokens"] > 0
    kinds = seen["stream_kinds"]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert seen["stream_text"] and seen["stream_completed_text"] == seen["stream_text"]
