"""What the simulated model says to a batched prompt: one answer per record id, as JSON.

A prompt that lists records as lines ``[id=<id>] <text>`` (the format ``tiergate batch`` sends,
see docs/batch.md) gets a JSON object mapping each id to its answer: a label code from the
prompt's ``<CODE> = <label>`` lines, an object filling the ``Schema: {...}`` line, or a few words.

Policy (deterministic by seed, like every sim answer):
- A record's code depends only on (seed, model, id, text), never on which other records share
  the call, so a record answered in two different calls gets the same label. About one record
  in ten gets a model-specific code (two models then disagree on it).
- To exercise the client's skip and split paths, per call and per id (so a retry in another
  call composition draws again): about 2% of ids are left out, 1% come back garbled, and about
  1 call in 100 with more than one record is answered with broken JSON.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping

import orjson

RECORD_LINE = re.compile(r"^\[id=(.+?)\] ?(.*)$", re.MULTILINE)
CODE_LINE = re.compile(r"^([A-Za-z0-9]{1,4}) = ", re.MULTILINE)
SCHEMA_LINE = re.compile(r"^Schema: (\{.*\})$", re.MULTILINE)
OMIT_PER_MILLE = 20
GARBLE_PER_MILLE = 10
MALFORMED_PER_MILLE = 10
MODEL_QUIRK_PER_MILLE = 100
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def _roll(*parts: object) -> int:
    """A number 0..999 from the parts: the sim's deterministic dice."""
    return zlib.crc32(":".join(str(p) for p in parts).encode()) % 1000


def expected_code(seed: int, model: str, rid: str, text: str, codes: tuple[str, ...]) -> str:
    """The code the sim answers for one record (the crash drill checks results against it)."""
    base = zlib.crc32(f"{seed}:{rid}:{text}".encode()) % len(codes)
    if _roll(seed, model, rid, "quirk") < MODEL_QUIRK_PER_MILLE:
        return codes[(base + 1) % len(codes)]
    return codes[base]


def batch_reply(
    seed: int,
    model: str,
    prompt_digest: int,
    text: str,
    sample: Callable[[Mapping[str, object], str], object],
) -> str | None:
    """The JSON answer to a batched prompt, or None when ``text`` lists no records."""
    if "[id=" not in text:
        return None
    records = RECORD_LINE.findall(text)
    if not records:
        return None
    if len(records) > 1 and _roll(seed, prompt_digest, "malformed") < MALFORMED_PER_MILLE:
        first: str = records[0][0]
        return '{"' + first + '": '  # cut short: the client must split and retry
    codes = tuple(CODE_LINE.findall(text))
    schema_match = SCHEMA_LINE.search(text)
    schema: object = None
    if schema_match:
        try:
            schema = orjson.loads(schema_match.group(1))
        except orjson.JSONDecodeError:
            schema = None
    out: dict[str, object] = {}
    for rid, body in records:
        roll = _roll(seed, prompt_digest, rid)
        if roll < OMIT_PER_MILLE:
            continue
        key = rid + "x" if roll < OMIT_PER_MILLE + GARBLE_PER_MILLE else rid
        if codes:
            out[key] = expected_code(seed, model, rid, body, codes)
        else:
            words = " ".join(WORDS[(roll + i) % len(WORDS)] for i in range(3))
            out[key] = sample(schema, words) if isinstance(schema, Mapping) else words
    # Spaces after separators: the sim counts a token per whitespace-separated piece.
    items = (f"{orjson.dumps(k).decode()}: {orjson.dumps(v).decode()}" for k, v in out.items())
    return "{" + ", ".join(items) + "}"
