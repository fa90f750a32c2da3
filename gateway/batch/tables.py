"""The checkpoint store's tables and the values that cross its boundary.

Use ``tables(prefix)`` to get the schema (one row per record and model in ``<prefix>units``,
one per answered call in ``<prefix>calls``) and ``call_key`` for a call's Idempotency-Key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True, slots=True)
class Unit:
    rid: str
    text: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Claim:
    """One call's worth of units, held by one worker under one idempotency key."""

    alias: str
    key: str
    units: tuple[Unit, ...]
    resumed: bool  # claimed again after a crash or an expired lease


@dataclass(frozen=True, slots=True)
class Provenance:
    model: str | None
    target: str | None
    config_version: str | None
    template_hash: str
    worker: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class CallUsage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    outcome: str  # ok | malformed | error


def call_key(job_id: str, alias: str, units: Sequence[Unit], salt: str = "") -> str:
    """The Idempotency-Key of a call: the same units at the same attempts give the same key;
    ``salt`` (what else shapes the request body, see ``spec.request_salt``) changes it when the
    job's prompt changes, so a changed request is never refused as a different body."""
    material = f"{job_id}|{alias}|{salt}|" + ",".join(f"{u.rid}#{u.attempts}" for u in units)
    return "tgb-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def tables(prefix: str) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    md = sa.MetaData()
    units = sa.Table(
        prefix + "units",
        md,
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("rid", sa.String(256), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("status", sa.String(8), nullable=False, default=PENDING),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("skips", sa.Integer, nullable=False, default=0),
        sa.Column("errors", sa.Integer, nullable=False, default=0),
        sa.Column("call_key", sa.String(64)),
        sa.Column("call_size", sa.Integer),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until", sa.Float),
        sa.Column("result", sa.Text),
        sa.Column("model", sa.String(256)),
        sa.Column("target", sa.String(256)),
        sa.Column("config_version", sa.String(128)),
        sa.Column("template_hash", sa.String(32)),
        sa.Column("done_key", sa.String(64)),
        sa.Column("worker", sa.String(128)),
        sa.Column("done_at", sa.Float),
        sa.Index(f"{prefix}units_pick", "job_id", "alias", "status", "call_key", "attempts", "seq"),
    )
    calls = sa.Table(
        prefix + "calls",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("call_key", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("replayed", sa.Boolean, nullable=False),
        sa.Column("resumed", sa.Boolean, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Index(f"{prefix}calls_recent", "job_id", "at"),  # the pacer's last minute
    )
    return md, units, calls
