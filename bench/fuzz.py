"""Coverage-guided fuzzing (atheris / libFuzzer) of the body parser and the SSE relay.

    python -m bench.fuzz --seconds 60            # both targets, the time split between them
    python -m bench.fuzz --target sse --seconds 30

Targets, each in its own process with a time budget (libFuzzer's ``-max_total_time``):

- ``body``: request bytes -> ``parse_json`` for chat and embeddings (what the edge runs), then,
  for a body that is accepted, what happens to it next: the upstream body encoder and the cache
  key. Allowed outcome: a typed request or a ``GatewayError`` (the 4xx the edge sends). Any
  other exception is a crash (e.g. the 500 that 255-1,024 levels of nesting used to cause).
- ``sse``: upstream SSE bytes, cut into pieces at fuzzer-chosen places -> the OpenAI provider's
  event relay (``OpenAIProvider._events``) -> the stream assembler the caches store from.
  Allowed: relayed chunks, or a ``GatewayError`` (a bad upstream stream fails the attempt).

Seeds are valid requests and streams; crashes are written under ``bench/results/fuzz-*``.
Prints per target the executions run and whether it crashed; exits 1 on any crash.
Needs ``atheris`` (in the dev extra; it installs from a wheel here, no clang needed).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = {
    "body": [
        b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}]}',
        b'{"model": "fast", "messages": [{"role": "user", "content": [{"type": "text", '
        b'"text": "x"}]}], "stream": true, "stream_options": {"include_usage": true}, '
        b'"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], '
        b'"tool_choice": {"type": "function", "function": {"name": "f"}}, "n": 2}',
        b'{"model": "embed", "input": ["a", "b"], "encoding_format": "float"}',
        b'{"model": "embed", "input": [[1, 2, 3]]}',
    ],
    "sse": [
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}'
        b'\n\ndata: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
        b"data: [DONE]\n\n",
        b': keep-alive\r\n\r\ndata: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n'
        b"data: [DONE]\r\n\r\n",
        b'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n",
    ],
}


def body_target() -> Any:
    import atheris

    with atheris.instrument_imports():
        import orjson

        from cache.keys import Scope, fingerprint
        from gateway.errors import GatewayError
        from gateway.http.bodies import parse_json
        from gateway.requests import ChatRequest, EmbeddingsRequest

    scope = Scope("team", "fast", "v1")

    def one(data: bytes) -> None:
        for model in (ChatRequest, EmbeddingsRequest):
            try:
                request = parse_json(data, model)
            except GatewayError as err:
                assert 400 <= err.status < 500, err.status
                continue
            body = request.model_dump(exclude_unset=True)
            orjson.dumps(body)  # the upstream body
            fingerprint(scope, "chat", body)  # the cache key

    return one


class FakeResponse:
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece

    def close(self) -> None:
        return None


def sse_target() -> Any:
    import atheris

    with atheris.instrument_imports():
        from gateway.calls import ReplyStats
        from gateway.errors import GatewayError
        from gateway.stages.replay import StreamAssembler
        from gateway.targets.openai_provider import OpenAIProvider

    provider: Any = object.__new__(OpenAIProvider)
    provider._target_name = "fuzz"
    loop = asyncio.new_event_loop()

    async def relay(pieces: list[bytes]) -> None:
        assembler = StreamAssembler()
        chunks = provider._events(FakeResponse(pieces), ReplyStats(), True, 0.0)
        try:
            async for chunk in chunks:
                assembler.add(chunk)
        except GatewayError:
            return
        assembler.body()

    def one(data: bytes) -> None:
        if not data:
            return
        # The first byte picks the piece size: every split of one stream must relay the same.
        size = 1 + data[0] % 64
        rest = data[1:]
        pieces = [rest[i : i + size] for i in range(0, len(rest), size)]
        loop.run_until_complete(relay(pieces))

    return one


def child(target: str, seconds: int) -> None:
    import atheris

    one = body_target() if target == "body" else sse_target()
    corpus = Path(tempfile.mkdtemp(prefix=f"tg-fuzz-{target}-"))
    for i, seed in enumerate(SEEDS[target]):
        (corpus / f"seed{i}").write_bytes(seed if target == "body" else b"\x10" + seed)
    RESULTS.mkdir(exist_ok=True)
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={RESULTS}/fuzz-{target}-",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, one)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="time budget, split between targets")
    ap.add_argument("--target", choices=["body", "sse", "all"], default="all")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.target, a.seconds)
        return 0
    targets = ["body", "sse"] if a.target == "all" else [a.target]
    each = max(1, a.seconds // len(targets))
    crashed = False
    for target in targets:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.fuzz",
                "--child",
                "--target",
                target,
                "--seconds",
                str(each),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        log = run.stderr
        execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
        done = re.findall(r"Done (\d+) runs in (\d+) second", log)
        n = execs[-1] if execs else (done[-1][0] if done else "?")
        ok = run.returncode == 0
        crashed |= not ok
        print(f"{target}: {n} executions in {each} s, {'no crash' if ok else 'CRASH'}")
        if not ok:
            print("\n".join(log.splitlines()[-40:]))
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
