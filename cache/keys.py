"""Exact-cache keys: a hash of the canonical form of everything that can change the answer.

Default-deny: every field of the request is part of the key except the few that only shape the
transport (``stream``, ``stream_options``) or are bookkeeping that never reaches the model's
output (``user``, ``metadata``, ``store``). An unknown field is part of the key, so a provider
parameter we have never heard of cannot make two different requests share an answer. The scope
(tenant, alias, rules version, namespace) is part of the key too, and of its Redis name, so
answers never cross tenants and a purge can find them by pattern.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Fields that cannot change the answer's content.
TRANSPORT_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})
KEY_PREFIX = "tg:xc"
KEY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Scope:
    tenant: str
    alias: str
    rules_version: str
    namespace: str = "default"
    route: str = ""  # what the caller pinned about the route (gateway.stages.tier_router)


def canonical(body: Mapping[str, Any]) -> bytes:
    material = {k: v for k, v in body.items() if k not in TRANSPORT_FIELDS}
    return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)


def fingerprint(scope: Scope, kind: str, body: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"{KEY_VERSION}\0{scope.tenant}\0{scope.alias}\0{scope.rules_version}\0".encode())
    h.update(f"{scope.namespace}\0{kind}\0".encode())
    if scope.route:
        h.update(f"route\0{scope.route}\0".encode())
    h.update(canonical(body))
    return h.hexdigest()


def _part(value: str) -> str:
    # Scope parts go into Redis key names: keep the separator and glob characters out.
    return value.replace(":", "_").replace("*", "_").replace("?", "_").replace("[", "_")


def redis_key(scope: Scope, digest: str) -> str:
    return (
        f"{KEY_PREFIX}:{_part(scope.tenant)}:{_part(scope.alias)}:{_part(scope.namespace)}:{digest}"
    )


def purge_pattern(
    tenant: str | None = None, alias: str | None = None, namespace: str | None = None
) -> str:
    """A SCAN pattern for a purge; None means any value for that part."""
    parts = [_part(p) if p is not None else "*" for p in (tenant, alias, namespace)]
    return f"{KEY_PREFIX}:{parts[0]}:{parts[1]}:{parts[2]}:*"
