"""Shared fixtures: typed Call/Reply builders for stage unit tests (stages get a fake next_)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
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
        **fields: Any,
    ) -> Call:
        request = ChatRequest.model_validate(
            {"model": alias, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
            | fields
        )
        return Call(
            request_id="req_test",
            principal=Principal(key_id="k1", team="t1", aliases=aliases),
            kind=CallKind.CHAT,
            alias=alias,
            request=request,
            started_ns=time.perf_counter_ns(),
            config_version="test",
            route=None if targets is None else Route(alias, tuple(targets)),
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
