"""Prompt token counts for budget reservations: the target's own tokenizer when it is known.

When to use: ``build_counters`` runs at start-up (and on reload) and gives the budget stage one
counter per alias; the stage calls it once per governed request (a few microseconds for a short
prompt). The only module importing tiktoken.

Policy:
- A target's ``tokenizer`` (rules) is ``auto`` by default: OpenAI model names map to their
  encoding (``o200k_base`` for gpt-4o, gpt-4.1, gpt-5, o1/o3/o4; ``cl100k_base`` for gpt-4,
  gpt-3.5 and text-embedding-*); anything else is ``estimate``.
- ``estimate``: characters / 4 (rounded up) plus 4 per message. It under-counts text that is not
  English (CJK runs near one token per character), which is why a known tokenizer is used when
  there is one; the settle always charges the provider's reported usage.
- An alias reserves by the largest count among its targets' tokenizers (a fallback must not find
  the reservation too small). Chat messages add OpenAI's framing: 3 tokens per message and 3 for
  the reply.
- The encodings load offline from the copy bundled with litellm's package (no download); if that
  fails, the target falls back to ``estimate`` with a warning. They load only when some target
  needs them (tens of MB of ranks).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.calls import Call
from gateway.requests import ChatRequest

log = logging.getLogger("tiergate.tokens")
Counter = Callable[[Call], int]
O200K = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
CL100K = ("gpt-4", "gpt-3.5", "text-embedding")
PER_MESSAGE, PER_REPLY = 3, 3


def tokenizer_for(model: str, configured: str) -> str:
    if configured != "auto":
        return configured
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(O200K):
        return "o200k_base"
    if name.startswith(CL100K):
        return "cl100k_base"
    return "estimate"


def _texts(call: Call) -> tuple[list[str], int]:
    """The prompt's texts and how many chat messages frame them."""
    request = call.request
    if isinstance(request, ChatRequest):
        texts: list[str] = []
        for message in request.messages:
            content = message.content
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(str(p.get("text", "")) for p in content)
        return texts, len(request.messages)
    raw = request.input
    return ([raw] if isinstance(raw, str) else [str(t) for t in raw]), 0


def estimate(call: Call) -> int:
    texts, messages = _texts(call)
    if messages:
        return math.ceil(sum(len(t) for t in texts) / 4) + 4 * messages
    return sum(math.ceil(len(t) / 4) + 1 for t in texts)


def _bundled_cache_dir() -> str | None:
    """litellm's package ships tiktoken's rank files; found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return str(path) if path.is_dir() else None


def load_encoding(name: str) -> Any | None:
    bundled = _bundled_cache_dir()
    if bundled is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", bundled)
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception as exc:  # missing files, no network: estimate instead
        log.warning("tokenizer %s unavailable (%s): estimating prompt tokens", name, exc)
        return None


def encoding_counter(encoding: Any) -> Counter:
    encode = encoding.encode_ordinary

    def count(call: Call) -> int:
        texts, messages = _texts(call)
        tokens = sum(len(encode(t)) for t in texts)
        return tokens + PER_MESSAGE * messages + (PER_REPLY if messages else 0)

    return count


def build_counters(
    aliases: Mapping[str, Iterable[str]], tokenizers: Mapping[str, str]
) -> dict[str, Counter]:
    """One counter per alias from its targets' tokenizers (``tokenizers``: target -> name)."""
    encodings: dict[str, Counter] = {}
    out: dict[str, Counter] = {}
    for alias, targets in aliases.items():
        counters: list[Counter] = []
        for name in sorted({tokenizers[t] for t in targets}):
            if name == "estimate":
                counters.append(estimate)
                continue
            if name not in encodings:
                encoding = load_encoding(name)
                encodings[name] = estimate if encoding is None else encoding_counter(encoding)
            counters.append(encodings[name])
        out[alias] = _largest(counters)
    return out


def _largest(counters: list[Counter]) -> Counter:
    """The largest of the counts (one counter: itself, with no wrapper on the hot path)."""
    unique = list(dict.fromkeys(counters))
    if len(unique) == 1:
        return unique[0]
    return lambda call: max(c(call) for c in unique)
