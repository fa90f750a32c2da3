"""What the simulated model says: deterministic text, tool calls and JSON answers.

Policy: the answer depends only on (model, prompt, seed, choice index), never on time or load,
so tests and demos are repeatable. Each model's word ring is built once at start-up; a request
picks an offset into it from a CRC of the prompt, which costs a slice, not a PRNG per request.
Token counts are "pieces": one word with its leading space is one token, and the same pieces
feed the JSON body, the stream and the usage numbers, so they always agree.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterable, Mapping
from itertools import cycle, islice
from typing import Literal, NamedTuple

import orjson

from gateway.sim.batch_answers import batch_reply
from gateway.sim.config import ModelBehaviour

Finish = Literal["stop", "length", "tool_calls"]

RING_SIZE = 1021  # prime, so index offsets do not fall into short cycles
VOCABULARY = (
    "the",
    "gateway",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "that",
    "fits",
    "its",
    "budget",
    "and",
    "latency",
    "target",
    "while",
    "cache",
    "answers",
    "repeat",
    "questions",
    "quickly",
    "so",
    "costs",
    "stay",
    "low",
    "provider",
    "limits",
    "are",
    "respected",
    "by",
    "pacing",
    "tokens",
    "per",
    "minute",
    "with",
    "fallback",
    "when",
    "one",
    "fails",
    "simple",
    "prompts",
    "go",
    "small",
    "fast",
    "models",
    "hard",
    "ones",
    "escalate",
    "larger",
    "system",
    "records",
    "every",
    "decision",
    "in",
    "headers",
    "logs",
    "metrics",
    "for",
    "later",
    "review",
)
_PIECE = re.compile(r"\s*\S+")
_SCHEMA_DEPTH = 8


class Voice(NamedTuple):
    """A model's precomputed material: the word ring, the fixed reply split into pieces."""

    ring: tuple[str, ...]
    reply: tuple[str, ...]
    echo: bool
    completion_tokens: int
    logprob: float
    name: str = ""
    seed: int = 0


class Prompt(NamedTuple):
    """What the answer depends on, read once from the request."""

    tokens: int
    digest: int
    last_user: str


class ToolSpec(NamedTuple):
    name: str
    parameters: Mapping[str, object] | None


class Ask(NamedTuple):
    """The request's wishes, format-neutral."""

    want_tokens: int | None = None
    cap: int | None = None
    json_mode: bool = False
    json_schema: Mapping[str, object] | None = None
    tool: ToolSpec | None = None


class ToolCall(NamedTuple):
    id: str
    name: str
    arguments: str


class Answer(NamedTuple):
    pieces: tuple[str, ...]
    finish: Finish
    tool_call: ToolCall | None = None

    @property
    def tokens(self) -> int:
        if self.tool_call is not None:
            return max(1, (len(self.tool_call.name) + len(self.tool_call.arguments)) // 4)
        return len(self.pieces)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def split_pieces(text: str) -> tuple[str, ...]:
    """Text as tokens: each word with its leading whitespace."""
    return tuple(_PIECE.findall(text))


def build_voice(name: str, behaviour: ModelBehaviour, seed: int) -> Voice:
    """Precompute a model's material once, at start-up."""
    rng = random.Random(f"{seed}:{name}")
    ring = tuple(" " + rng.choice(VOCABULARY) for _ in range(RING_SIZE))
    reply = split_pieces(behaviour.reply) if behaviour.reply is not None else ()
    return Voice(
        ring, reply, behaviour.echo, behaviour.completion_tokens, behaviour.logprob, name, seed
    )


def read_prompt(texts: Iterable[tuple[str, str]], seed: int | None) -> Prompt:
    """Token estimate (chars/4 + 3 per message), CRC digest and last user text of a prompt."""
    digest = zlib.crc32(b"%d" % seed) if seed is not None else 0
    chars = count = 0
    last_user = ""
    for role, text in texts:
        count += 1
        chars += len(text)
        digest = zlib.crc32(text.encode(), zlib.crc32(role.encode(), digest))
        if role == "user":
            last_user = text
    return Prompt(max(1, chars // 4 + 3 * count), digest, last_user)


def _from_ring(ring: tuple[str, ...], offset: int, count: int) -> tuple[str, ...]:
    if offset + count <= len(ring):
        return ring[offset : offset + count]
    return tuple(islice(cycle(ring), offset, offset + count))


def _fit(pieces: tuple[str, ...], count: int) -> tuple[str, ...]:
    if len(pieces) >= count:
        return pieces[:count]
    return tuple(islice(cycle(pieces), count))


def _text_pieces(voice: Voice, prompt: Prompt, ask: Ask, index: int) -> tuple[str, ...]:
    if voice.echo and prompt.last_user.strip():
        base = split_pieces(prompt.last_user)
    elif voice.reply:
        base = voice.reply
    else:
        offset = (prompt.digest + index * 7919) % len(voice.ring)
        pieces = _from_ring(voice.ring, offset, ask.want_tokens or voice.completion_tokens)
        return (pieces[0].lstrip(), *pieces[1:])
    return base if ask.want_tokens is None else _fit(base, ask.want_tokens)


def answer(voice: Voice, prompt: Prompt, ask: Ask, index: int, call_id: str) -> Answer:
    """The answer for choice ``index``: a tool call, a JSON object or plain text."""
    if ask.tool is not None:
        arguments = orjson.dumps(sample_for_schema(ask.tool.parameters or {}, "", empty=True))
        return Answer((), "tool_calls", ToolCall(call_id, ask.tool.name, arguments.decode()))
    batched = batch_reply(
        voice.seed, voice.name, prompt.digest, prompt.last_user, sample_for_schema
    )
    if batched is not None:
        pieces = split_pieces(batched)
    else:
        pieces = _text_pieces(voice, prompt, ask, index)
    if ask.json_mode and batched is None:
        text = "".join(pieces)
        value = sample_for_schema(ask.json_schema or {}, text)
        pieces = split_pieces(orjson.dumps(value).decode())
    if ask.cap is not None and len(pieces) > ask.cap:
        return Answer(pieces[: ask.cap], "length")
    return Answer(pieces, "stop")


def sample_for_schema(schema: Mapping[str, object], text: str, *, empty: bool = False) -> object:
    """A JSON object that fits ``schema`` (best effort): enums take their first value, strings
    the answer text, numbers their minimum or 0. A schema without properties gives
    ``{"answer": text}``, or ``{}`` with ``empty`` (tool arguments).
    """
    value = _sample(schema, schema, text, 0)
    if isinstance(value, dict) and value:
        return value
    return {} if empty else {"answer": text}


def _resolve(root: Mapping[str, object], schema: Mapping[str, object]) -> Mapping[str, object]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: object = root
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _sample(root: Mapping[str, object], schema: object, text: str, depth: int) -> object:
    if not isinstance(schema, Mapping) or depth > _SCHEMA_DEPTH:
        return None
    schema = _resolve(root, schema)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _sample(root, options[0], text, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {str(k): _sample(root, v, text, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [_sample(root, schema.get("items"), text, depth + 1)]
    if kind == "string":
        return text
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return low if isinstance(low, int | float) else 0
    if kind == "boolean":
        return True
    return None
