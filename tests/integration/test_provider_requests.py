"""The exact requests sent to Azure OpenAI, Gemini and Bedrock targets, captured by a local
HTTP server that answers in each provider's format (these providers cannot be reached here).

Azure goes through the gateway's own OpenAI path (deployment URL, ``api-version`` query,
``api-key`` header, or an Entra bearer token); Gemini and Bedrock through litellm. Bedrock must
sign with the AWS credential chain (SigV4 from the environment's credentials), never send a
bearer token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from tests.integration.conftest import key_hash

pytestmark = pytest.mark.integration

KEY = "tg-test-key-providers"
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi from azure"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
}
GEMINI = {
    "candidates": [
        {
            "content": {"parts": [{"text": "hi from gemini"}], "role": "model"},
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 3, "totalTokenCount": 6},
}
BEDROCK = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hi from bedrock"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 3, "outputTokens": 3, "totalTokens": 6},
}

TITAN = {"embedding": [0.1, 0.2, 0.3], "inputTextTokenCount": 3}
GEMINI_EMBED = {"embeddings": [{"values": [0.4, 0.5, 0.6]}]}


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: dict = field(default_factory=dict)


@pytest.fixture
def capture() -> Iterator[tuple[int, list[Captured]]]:
    seen: list[Captured] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append(Captured("POST", self.path, headers, json.loads(raw or b"{}")))
            if "embedcontents" in self.path.lower():
                answer = GEMINI_EMBED
            elif "titan-embed" in self.path:
                answer = TITAN
            elif "generateContent" in self.path:
                answer = GEMINI
            elif "/model/" in self.path:
                answer = BEDROCK
            else:
                answer = CHAT
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def rules(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    return f"""
version: providers-1
targets:
  azure:
    provider: azure
    model: gpt-4o
    api_base: {base}/openai/deployments/gpt4o-prod
    api_version: 2024-10-21
    api_key_env: AZURE_TEST_KEY
  azure-entra:
    provider: azure
    model: gpt-4o
    api_base: {base}/openai/deployments/gpt4o-prod
    api_version: 2024-10-21
    auth_header: authorization
    api_key_env: AZURE_TEST_TOKEN
  gemini:
    provider: litellm
    model: gemini/gemini-2.0-flash
    api_base: {base}
    api_key_env: GEMINI_TEST_KEY
  bedrock:
    provider: litellm
    model: bedrock/converse/anthropic.claude-3-haiku-20240307-v1:0
    api_base: {base}
  titan:
    provider: litellm
    model: bedrock/amazon.titan-embed-text-v2:0
    api_base: {base}
  gemini-embed:
    provider: litellm
    model: gemini/text-embedding-004
    api_base: {base}
    api_key_env: GEMINI_TEST_KEY
aliases:
  titan: {{kind: embeddings, targets: [titan]}}
  gemini-embed: {{kind: embeddings, targets: [gemini-embed]}}
  azure: {{targets: [azure]}}
  azure-entra: {{targets: [azure-entra]}}
  gemini: {{targets: [gemini]}}
  bedrock: {{targets: [bedrock]}}
keys:
  - {{id: providers, sha256: {key_hash(KEY)}}}
"""


ENV = {
    "AZURE_TEST_KEY": "azure-secret-123",
    "AZURE_TEST_TOKEN": "entra-token-456",
    "GEMINI_TEST_KEY": "gemini-secret-789",
    "AWS_ACCESS_KEY_ID": "AKIATESTCHAIN0000000",
    "AWS_SECRET_ACCESS_KEY": "test-secret-access-key",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def ask(port: int, alias: str) -> str:
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=30
    ) as client:
        done = client.chat.completions.create(
            model=alias, messages=[{"role": "user", "content": "Hello"}], max_tokens=16
        )
    return done.choices[0].message.content or ""


def test_exact_provider_requests(capture, spawn_gateway) -> None:
    port, seen = capture
    gw = spawn_gateway(rules(port), **ENV)

    assert ask(gw.port, "azure") == "hi from azure"
    sent = seen[-1]
    assert sent.path == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == "azure-secret-123"
    assert "authorization" not in sent.headers
    assert sent.body["messages"] == [{"role": "user", "content": "Hello"}]

    assert ask(gw.port, "azure-entra") == "hi from azure"
    sent = seen[-1]
    assert sent.headers["authorization"] == "Bearer entra-token-456"
    assert "api-key" not in sent.headers

    assert ask(gw.port, "gemini") == "hi from gemini"
    sent = seen[-1]
    assert "/models/gemini-2.0-flash:generateContent" in sent.path
    assert "gemini-secret-789" in (sent.headers.get("x-goog-api-key", "") + sent.path)
    assert sent.body["contents"][0]["parts"][0]["text"] == "Hello"

    assert ask(gw.port, "bedrock") == "hi from bedrock"
    sent = seen[-1]
    assert sent.path.endswith("/converse")
    assert "anthropic.claude-3-haiku-20240307-v1" in sent.path
    auth = sent.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIATESTCHAIN0000000/")
    assert "/eu-west-1/bedrock/aws4_request" in auth
    assert sent.body["messages"][0]["content"][0]["text"] == "Hello"


def test_embeddings_through_litellm_targets(capture, spawn_gateway) -> None:
    port, seen = capture
    gw = spawn_gateway(rules(port), **ENV)
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=KEY, max_retries=0, timeout=30
    ) as client:
        titan = client.embeddings.create(model="titan", input="hello")
        assert titan.data[0].embedding == [0.1, 0.2, 0.3]
        sent = seen[-1]
        assert "/model/amazon.titan-embed-text-v2%3A0/invoke" in sent.path  # the id, URL-quoted
        assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
        assert sent.body["inputText"] == "hello"
        gemini = client.embeddings.create(model="gemini-embed", input="hello")
        assert gemini.data[0].embedding == [0.4, 0.5, 0.6]
        sent = seen[-1]
        assert "text-embedding-004:batchEmbedContents" in sent.path
        assert sent.body["requests"][0]["content"]["parts"][0]["text"] == "hello"
