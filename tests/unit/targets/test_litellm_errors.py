"""litellm's exceptions by meaning: the client's bad body, an unreadable answer, a dead target.

litellm raises ``APIConnectionError`` (status 500) for all three of: a ``KeyError`` in its own
request translation, a ``KeyError`` reading a malformed answer, and (as ``InternalServerError``)
a refused connection. Only the first is the client's; the breaker must count the other two.
A real HTTP server in this process plays the provider (Anthropic's format).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from gateway.errors import (
    GatewayError,
    ProviderBadResponse,
    ProviderUnavailable,
    UpstreamRejected,
)
from gateway.rules import Target
from gateway.targets.ejection import FAILURE, HEALTHY, verdict_of
from gateway.targets.litellm_provider import LiteLLMProvider


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Upstream:
    def __init__(self) -> None:
        self.requests = 0
        self.body = b"{}"  # valid JSON, not a Messages answer


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, int]]:
    state = Upstream()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            state.requests += 1
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, server.server_port
    server.shutdown()
    server.server_close()


def provider(port: int) -> LiteLLMProvider:
    target = Target(
        provider="litellm",
        model="anthropic/test-model",
        api_base=f"http://127.0.0.1:{port}",
        timeouts={"connect_s": 1.0, "first_token_s": 2.0, "total_s": 2.0},
    )
    return LiteLLMProvider("t", target, "test-key")


async def error_of(p: LiteLLMProvider, call: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        reply = await p(call)
        async for _ in reply.chunks:
            pass
    return caught.value


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": {}},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
        {"tools": [{}]},
        {"messages": [{"role": "user", "content": [{}]}]},
        {"metadata": {"user_id": 5}},
    ],
)
async def test_untranslatable_body_is_the_clients_400_and_nothing_is_sent(
    upstream: tuple[Upstream, int], make_call: Any, fields: dict[str, Any], stream: bool
) -> None:
    state, port = upstream
    before = state.requests
    err = await error_of(provider(port), make_call("a", stream=stream, **fields))
    assert isinstance(err, UpstreamRejected) and err.status == 400, err.detail
    assert err.code == "untranslatable_request"
    assert verdict_of(err) is HEALTHY
    assert state.requests == before


@pytest.mark.asyncio
async def test_an_unreadable_answer_still_counts_against_the_target(
    upstream: tuple[Upstream, int], make_call: Any
) -> None:
    state, port = upstream
    before = state.requests
    err = await error_of(provider(port), make_call("a"))
    assert state.requests == before + 1
    assert isinstance(err, ProviderBadResponse), err.detail
    assert verdict_of(err) is FAILURE


@pytest.mark.asyncio
async def test_a_refused_connection_still_counts_against_the_target(make_call: Any) -> None:
    err = await error_of(provider(free_port()), make_call("a"))
    assert isinstance(err, ProviderUnavailable), err.detail
    assert verdict_of(err) is FAILURE
