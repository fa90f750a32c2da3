"""``tiergate --help`` lists every command on one line; ``keys list``, ``usage`` and
``targets`` print tables from a running gateway's admin API."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest

from gateway.ops_cli import table
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

COMMANDS = (
    "serve",
    "check-config",
    "sim",
    "drill",
    "hash-key",
    "usage",
    "keys",
    "eval",
    "targets",
    "train",
    "batch",
)


def tiergate(*args: str) -> str:
    env = dict(os.environ, COLUMNS="100", TERM="dumb", NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_lists_every_command_on_one_line() -> None:
    lines = tiergate("--help").splitlines()
    for command in COMMANDS:
        mine = [line for line in lines if line.strip("│ ").startswith(command + " ")]
        assert len(mine) == 1, command
        index = lines.index(mine[0])
        follower = lines[index + 1].strip("│ ")
        # The next line is another command or the end of the box: the help fits on one line.
        assert not follower or follower.split()[0] in COMMANDS or follower.startswith("╰")


def test_tables(gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key=gateway.key, max_retries=0) as client:
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    admin = ("--gateway", gateway.root, "--admin-key", gateway.admin_key)
    targets = tiergate("targets", *admin).splitlines()
    assert targets[0].split()[:4] == ["target", "model", "provider", "state"]
    assert any(line.split()[:2] == ["ok", "sim-fast"] for line in targets[2:]), targets
    usage = tiergate("usage", "--group-by", "team", *admin).splitlines()
    assert usage[0].split() == ["team", "requests", "tokens_in", "tokens_out", "usd"]
    assert any(line.startswith("qa ") for line in usage) and usage[-1].startswith("total")
    keys = tiergate("keys", "list", *admin).splitlines()
    assert keys[0].split()[:2] == ["id", "team"]
    assert any(line.split()[:2] == ["itest", "qa"] for line in keys[2:])
    assert "sim-fast" in tiergate("targets", "--json", *admin)


def test_table_alignment() -> None:
    text = table(["name", "n"], [["a", 1], ["bbb", 1000]])
    assert text.splitlines() == ["name      n", "----  -----", "a         1", "bbb   1,000"]
