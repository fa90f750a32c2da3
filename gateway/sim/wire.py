"""The shared shape of the two wire formats: what a rendered answer needs and yields.

Use ``Completion`` to hand a finished answer to a format, and ``Wire`` to render it; the server
applies timing and faults to the ``Events`` a format returns without knowing the format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from gateway.sim.answers import Answer
from gateway.sim.protocol import Full
from gateway.sim.provider_errors import ProviderError


class Completion(NamedTuple):
    id: str
    created: int
    model: str
    answers: tuple[Answer, ...]
    completion_tokens: int
    prompt_tokens: int
    logprob: float
    top_logprobs: int | None = None  # None: no logprobs asked for
    include_usage: bool = False


class Events(NamedTuple):
    """A stream as three parts: opening events, one step per token position, closing events."""

    head: bytes
    steps: tuple[bytes, ...]
    tail: bytes


class Wire(Protocol):
    """One provider wire format (OpenAI or Anthropic)."""

    malformed_event: bytes

    def error(self, err: ProviderError, extra: bytes = b"") -> Full: ...

    def rest(self, completion: Completion) -> bytes:
        """The JSON body without its id and timestamp (which change on every request)."""
        ...

    def stamp(self, completion: Completion, rest: bytes) -> bytes:
        """The JSON body: ``rest`` with the completion's id and timestamp put in."""
        ...

    def events(self, completion: Completion) -> Events: ...

    def restamp(self, events: Events, old: Completion, new: Completion) -> Events:
        """``events`` rendered for ``old``, made to carry ``new``'s id and timestamp."""
        ...

    def limit_headers(self, pairs: tuple[tuple[str, str], ...]) -> bytes: ...


def render_headers(pairs: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in pairs).encode("latin-1")


def retry_headers(err: ProviderError) -> bytes:
    if err.retry_after_s is None:
        return b""
    seconds = max(0, math.ceil(err.retry_after_s))
    millis = max(0, math.ceil(err.retry_after_s * 1000))
    return b"retry-after: %d\r\nretry-after-ms: %d\r\n" % (seconds, millis)
