"""Virtual keys: declared in the rules (GitOps) or managed through the admin API, stored hashed.

Only the SHA-256 of a key is ever stored (the secret is shown once, at creation or rotation).
Managed keys live in Redis (``tg:key:<sha256>`` -> the record as JSON, ``tg:keyid:<id>`` ->
the sha256), so every replica sees the same keys.

Lookups are cached per process for ``CACHE_TTL_S`` (1 s): a revocation or rotation takes
effect on every replica within a second (at once on the replica that served the admin call), and
a request pays a dict lookup, not a Redis round trip.

Revocation wins over the cache, also in an outage: when Redis is unreachable, a managed key whose
cached lookup is older than ``CACHE_TTL_S`` gets 503 ``state_unavailable`` with Retry-After (never
a 401 for a key that may be valid, never a success for a key that may have been revoked just
before the outage began). Keys declared in the rules need no lookup and keep working; deployments
that must serve through a state-store outage (``state_outage: open``) declare their keys there.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from gateway.calls import Principal
from gateway.errors import AuthError, StateUnavailable
from gateway.rules import NAME, Key, Quota

KEY_PREFIX = "tg:key:"  # + sha256 -> KeyRecord JSON
ID_PREFIX = "tg:keyid:"  # + key id -> sha256
IDS = "tg:keyids"  # set of managed key ids
CACHE_TTL_S = 1.0
CACHE_MAX = 8192


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def new_secret() -> str:
    return "tg-" + secrets.token_urlsafe(32)


class KeyRecord(BaseModel):
    """A managed key as stored (never the secret)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NAME)
    sha256: str
    team: str = "default"
    aliases: list[str] | None = None
    quota: Quota = Quota()
    on_exhausted: Literal["reject", "downgrade"] = "reject"
    priority: Literal["interactive", "standard", "batch"] = "standard"
    clearance: str = "public"
    tier_header: bool = False
    metadata: dict[str, str] = {}
    created_at: str = ""
    revoked: bool = False
    source: Literal["admin", "config"] = "admin"

    def principal(self) -> Principal:
        return Principal(
            key_id=self.id,
            team=self.team,
            aliases=None if self.aliases is None else frozenset(self.aliases),
            quota=self.quota,
            on_exhausted=self.on_exhausted,
            priority=self.priority,
            clearance=self.clearance,
            tier_header=self.tier_header,
        )

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but the hash."""
        return self.model_dump(exclude={"sha256"})


def record_of_config(key: Key) -> KeyRecord:
    return KeyRecord(
        id=key.id,
        sha256=key.sha256,
        team=key.team,
        aliases=key.aliases,
        quota=key.quota,
        on_exhausted=key.on_exhausted,
        priority=key.priority,
        clearance=key.clearance,
        tier_header=key.tier_header,
        source="config",
    )


class Keys:
    """Resolves ``Authorization: Bearer <key>`` to a ``Principal``; manages keys in Redis."""

    def __init__(
        self,
        config_keys: Iterable[Key],
        redis: aioredis.Redis,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = {k.sha256: record_of_config(k) for k in config_keys}
        # A key declared in the rules has one Principal for the life of these rules (a reload
        # builds new Keys): the stages that keep per-key state see the same object each call.
        self._config_principals = {sha: r.principal() for sha, r in self._config.items()}
        self._redis = redis
        self._clock = clock
        # secret -> (principal, fetched_at); only keys that matched, bounded.
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError("Missing API key: send 'Authorization: Bearer <key>'.")
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise AuthError("Malformed Authorization header: expected 'Bearer <key>'.")
        now = self._clock()
        cached = self._cache.get(secret)
        if cached is not None and now - cached[1] < CACHE_TTL_S:
            return cached[0]
        digest = hash_key(secret)
        config = self._config_principals.get(digest)
        if config is not None:
            return self._remember(secret, config, now)
        try:
            raw = await self._redis.get(KEY_PREFIX + digest)
        except (RedisError, OSError) as exc:
            # No stale answer: the key may have been revoked just before the store went away.
            raise StateUnavailable(
                "The key store is unreachable; try again shortly.", retry_after_s=1.0
            ) from exc
        record = None if raw is None else KeyRecord.model_validate_json(raw)
        if record is None or record.revoked:
            self._cache.pop(secret, None)
            raise AuthError("Incorrect API key provided.")
        return self._remember(secret, record.principal(), now)

    def _remember(self, secret: str, principal: Principal, now: float) -> Principal:
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[secret] = (principal, now)
        return principal

    # --- management (admin API) -------------------------------------------------------------

    async def create(self, record: KeyRecord) -> tuple[KeyRecord, str]:
        """Store a new key; returns the record and the secret (shown once)."""
        if any(r.id == record.id for r in self._config.values()) or await self._redis.exists(
            ID_PREFIX + record.id
        ):
            raise ValueError(f"a key with id '{record.id}' exists")
        secret = new_secret()
        stored = record.model_copy(
            update={
                "sha256": hash_key(secret),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "source": "admin",
            }
        )
        await self._save(stored)
        await self._redis.sadd(IDS, stored.id)
        return stored, secret

    async def get(self, key_id: str) -> KeyRecord | None:
        for record in self._config.values():
            if record.id == key_id:
                return record
        digest = await self._redis.get(ID_PREFIX + key_id)
        if digest is None:
            return None
        raw = await self._redis.get(KEY_PREFIX + _text(digest))
        return None if raw is None else KeyRecord.model_validate_json(raw)

    async def all(self) -> list[KeyRecord]:
        ids = sorted(_text(i) for i in await self._redis.smembers(IDS))
        managed = [r for r in [await self.get(i) for i in ids] if r is not None]
        return list(self._config.values()) + managed

    async def update(self, key_id: str, changes: dict[str, Any]) -> KeyRecord:
        record = await self._managed(key_id)
        updated = KeyRecord.model_validate(record.model_dump() | changes)
        await self._save(updated)
        self._forget(key_id)
        return updated

    def _forget(self, key_id: str) -> None:
        """Drop this replica's cached lookups of a key at once (others follow within 1 s)."""
        stale = [s for s, (p, _) in self._cache.items() if p.key_id == key_id]
        for secret in stale:
            self._cache.pop(secret, None)

    async def rotate(self, key_id: str) -> tuple[KeyRecord, str]:
        record = await self._managed(key_id)
        secret = new_secret()
        rotated = record.model_copy(update={"sha256": hash_key(secret)})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(KEY_PREFIX + record.sha256)
            pipe.set(KEY_PREFIX + rotated.sha256, rotated.model_dump_json())
            pipe.set(ID_PREFIX + rotated.id, rotated.sha256)
            await pipe.execute()
        self._forget(key_id)
        return rotated, secret

    async def revoke(self, key_id: str) -> KeyRecord:
        return await self.update(key_id, {"revoked": True})

    async def _managed(self, key_id: str) -> KeyRecord:
        record = await self.get(key_id)
        if record is None:
            raise KeyError(key_id)
        if record.source == "config":
            raise PermissionError(f"key '{key_id}' is declared in the rules; change it there")
        return record

    async def _save(self, record: KeyRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(KEY_PREFIX + record.sha256, orjson.dumps(record.model_dump()))
            pipe.set(ID_PREFIX + record.id, record.sha256)
            await pipe.execute()
