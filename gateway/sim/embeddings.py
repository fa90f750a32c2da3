"""Deterministic pseudo-embeddings: a unit vector derived from a hash of the input.

Equal texts get equal vectors and different texts nearly orthogonal ones, which is what cache
and routing tests need; there is no meaning in them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from array import array


def _as_bytes(item: str | list[int]) -> bytes:
    if isinstance(item, str):
        return item.encode()
    return array("q", item).tobytes()


def vector(item: str | list[int], dimensions: int) -> list[float]:
    """A unit vector of ``dimensions`` floats, fixed for ``item``."""
    raw = array("h", hashlib.shake_256(_as_bytes(item)).digest(2 * dimensions))
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def tokens(item: str | list[int]) -> int:
    return max(1, len(item) // 4) if isinstance(item, str) else max(1, len(item))


def as_base64(values: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
