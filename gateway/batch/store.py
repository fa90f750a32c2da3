"""Checkpoints in SQL (SQLAlchemy): a job's work units, claims, results and calls.

Policy (what makes resume lose nothing and repeat nothing):
- A *unit* is one record for one model alias: ``pending`` -> ``done`` (or ``failed`` after
  ``max_attempts``). Units are loaded once; loading again is a no-op, so ``run`` resumes.
- A worker *claims* a group of pending units for one call in its own transaction before the
  call: the group gets an idempotency key (derived from the job, the alias, and each id with its
  attempt count), the worker's name and a lease. On PostgreSQL the claim reads with
  ``FOR UPDATE SKIP LOCKED`` so several workers never take the same rows.
- A live worker renews its leases every few seconds (``renew``). A group whose lease ran out
  (its worker died) or that this worker's name still holds (it was restarted) is claimed again
  as it was: same ids, same key, so the same request is re-sent and
  the gateway replays its stored answer instead of paying for it twice.
- Every call's outcome is committed in one transaction: answers -> done, skips -> back to the
  pool with one more attempt, and one row in the calls table (tokens, cost, replayed).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from gateway.batch.tables import (
    DONE,
    FAILED,
    PENDING,
    CallUsage,
    Claim,
    Provenance,
    Unit,
    call_key,
    tables,
)

__all__ = ["DONE", "FAILED", "PENDING", "CallUsage", "Claim", "Provenance", "Store", "Unit"]


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit survives the process being killed (the OS has
    it) without an fsync per call, which would cap a worker at a few dozen calls a second. A
    power cut may lose the last commits: those records are pending again and re-sent under the
    same keys, so the gateway replays them (nothing is lost or paid twice)."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Store:
    """A job's checkpoint store. One per process; each method is one short transaction."""

    def __init__(self, url: str, prefix: str = "tg_batch_") -> None:
        sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(url, connect_args={"timeout": 30} if sqlite else {})
        if sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_wal)
        self._md, self.units, self.calls = tables(prefix)
        try:
            self._md.create_all(self.engine)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            # Two workers creating the tables at once on PostgreSQL: the other one won.
            time.sleep(0.5)
            self._md.create_all(self.engine)
        self._locking = self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def drop(self) -> None:
        """Remove this store's tables (tests, drills)."""
        self._md.drop_all(self.engine)

    # ------------------------------------------------------------------ loading
    def load(
        self, job_id: str, aliases: Sequence[str], rows: Iterable[tuple[str, str, str]]
    ) -> int:
        """Insert (rid, text, record json) units for each alias unless the job is loaded.
        Workers that start together race here: the loser's insert meets the winner's rows
        (a unique violation once the winner commits) and it goes on with the loaded job."""
        try:
            return self._load(job_id, aliases, rows)
        except sa.exc.IntegrityError:
            return 0

    def _load(
        self, job_id: str, aliases: Sequence[str], rows: Iterable[tuple[str, str, str]]
    ) -> int:
        u = self.units
        with self.engine.begin() as conn:
            have = conn.execute(
                sa.select(sa.func.count()).select_from(u).where(u.c.job_id == job_id)
            ).scalar_one()
            if have:
                return 0
            batch: list[dict[str, Any]] = []
            count = 0
            for seq, (rid, text, record) in enumerate(rows):
                for alias in aliases:
                    batch.append(
                        {"job_id": job_id, "alias": alias, "rid": rid, "seq": seq, "text": text,
                         "record": record, "status": PENDING, "attempts": 0, "skips": 0,
                         "errors": 0}
                    )  # fmt: skip
                count += 1
                if len(batch) >= 2000:
                    conn.execute(u.insert(), batch)
                    batch = []
            if batch:
                conn.execute(u.insert(), batch)
        return count

    # ------------------------------------------------------------------ claims
    def _pick(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        return stmt.with_for_update(skip_locked=True) if self._locking else stmt

    def claim(
        self,
        job_id: str,
        alias: str,
        worker: str,
        size: int,
        lease_s: float,
        min_size: int = 1,
        salt: str = "",
    ) -> Claim | None:
        """A group to call: first one whose lease ran out (a dead worker's, or this worker's
        from before a restart: see ``adopt``), else ``size`` fresh pending units, fewest
        attempts first, in input order; None when fewer than ``min_size`` are free (the
        caller waits for its calls in flight to return their skips, rather than paying a
        whole prompt for a record or two)."""
        u = self.units
        now = time.time()
        base = (u.c.job_id == job_id) & (u.c.alias == alias) & (u.c.status == PENDING)
        cols = (u.c.rid, u.c.text, u.c.attempts, u.c.call_key, u.c.call_size)
        with self.engine.begin() as conn:
            stale = conn.execute(
                self._pick(
                    sa.select(u.c.call_key)
                    .where(base & u.c.call_key.is_not(None))
                    .where(u.c.lease_until < now)
                    .order_by(u.c.seq)
                    .limit(1)
                )
            ).first()
            if stale is not None:
                rows = conn.execute(
                    self._pick(sa.select(*cols).where(base & (u.c.call_key == stale[0]))).order_by(
                        u.c.seq
                    )
                ).all()
                if rows and len(rows) == rows[0].call_size:
                    self._lease(conn, job_id, alias, stale[0], worker, now + lease_s)
                    units = tuple(Unit(r.rid, r.text, r.attempts) for r in rows)
                    return Claim(alias, stale[0], units, resumed=True)
            rows = conn.execute(
                self._pick(
                    sa.select(*cols)
                    .where(base & u.c.call_key.is_(None))
                    .order_by(u.c.attempts, u.c.seq)
                    .limit(size)
                )
            ).all()
            if not rows or len(rows) < min_size:
                return None
            units = tuple(Unit(r.rid, r.text, r.attempts) for r in rows)
            key = call_key(job_id, alias, units, salt)
            conn.execute(
                u.update()
                .where(base & u.c.rid.in_([x.rid for x in units]))
                .values(call_key=key, call_size=len(units))
            )
            self._lease(conn, job_id, alias, key, worker, now + lease_s)
            return Claim(alias, key, units, resumed=False)

    def renew(self, job_id: str, worker: str, lease_s: float) -> int:
        """Extend the leases of every group this worker holds (its heartbeat): a group waiting
        for room under the rate limit is still alive, and must not be taken over."""
        u = self.units
        with self.engine.begin() as conn:
            res = conn.execute(
                u.update()
                .where((u.c.job_id == job_id) & (u.c.claimed_by == worker))
                .where((u.c.status == PENDING) & u.c.call_key.is_not(None))
                .where(u.c.lease_until > 0.0)  # not one ``adopt`` just released
                .values(lease_until=time.time() + lease_s)
            )
        return int(res.rowcount)

    def adopt(self, job_id: str, worker: str) -> int:
        """At a worker's start: end the leases its name still holds (it was killed and
        restarted), so its groups are re-sent at once, with their keys, instead of after the
        lease. Returns the units released."""
        u = self.units
        with self.engine.begin() as conn:
            res = conn.execute(
                u.update()
                .where((u.c.job_id == job_id) & (u.c.claimed_by == worker))
                .where((u.c.status == PENDING) & u.c.call_key.is_not(None))
                .values(lease_until=0.0)
            )
        return int(res.rowcount)

    def retry_failed(self, job_id: str) -> int:
        """Give every failed unit one more try (after an outage, say); its attempt count is
        kept, so the retry carries a new Idempotency-Key."""
        u = self.units
        with self.engine.begin() as conn:
            res = conn.execute(
                u.update()
                .where((u.c.job_id == job_id) & (u.c.status == FAILED))
                .values(status=PENDING)
            )
        return int(res.rowcount)

    def _lease(
        self, conn: sa.Connection, job_id: str, alias: str, key: str, worker: str, until: float
    ) -> None:
        u = self.units
        conn.execute(
            u.update()
            .where((u.c.job_id == job_id) & (u.c.alias == alias) & (u.c.call_key == key))
            .values(claimed_by=worker, lease_until=until)
        )

    def split(
        self, job_id: str, claim: Claim, usage: CallUsage, prov: Provenance
    ) -> tuple[Claim, Claim]:
        """A malformed answer: the group becomes two halves, each with its own key (and the
        call is recorded), in one transaction."""
        mid = len(claim.units) // 2
        halves = (claim.units[:mid], claim.units[mid:])
        u = self.units
        out = []
        with self.engine.begin() as conn:
            for half in halves:
                ids = ",".join(x.rid for x in half)
                key = "tgs-" + hashlib.sha256(f"{claim.key}|{ids}".encode()).hexdigest()[:40]
                conn.execute(
                    u.update()
                    .where((u.c.job_id == job_id) & (u.c.alias == claim.alias))
                    .where(u.c.rid.in_([x.rid for x in half]) & (u.c.call_key == claim.key))
                    .values(call_key=key, call_size=len(half))
                )
                out.append(Claim(claim.alias, key, half, resumed=False))
            self._record_call(conn, job_id, claim, usage, prov, 0, 0)
        return out[0], out[1]

    # ------------------------------------------------------------------ outcomes
    def commit(
        self,
        job_id: str,
        claim: Claim,
        answers: Mapping[str, Any],
        usage: CallUsage,
        prov: Provenance,
        max_attempts: int,
        errored: bool = False,
    ) -> int:
        """One call's outcome in one transaction; returns how many units became done."""
        u = self.units
        now = time.time()
        mine = (
            (u.c.job_id == job_id)
            & (u.c.alias == claim.alias)
            & (u.c.call_key == claim.key)
            & (u.c.status == PENDING)
        )
        done = dup = 0
        answered = {
            unit.rid: orjson.dumps(answers[unit.rid]).decode()
            for unit in claim.units
            if unit.rid in answers
        }
        with self.engine.begin() as conn:
            if answered:
                # One statement for the whole call: its rowcount is exact on every dialect.
                res = conn.execute(
                    u.update()
                    .where(mine & u.c.rid.in_(list(answered)))
                    .values(
                        status=DONE,
                        result=sa.case(answered, value=u.c.rid),
                        model=prov.model,
                        target=prov.target,
                        config_version=prov.config_version,
                        template_hash=prov.template_hash,
                        done_key=claim.key,
                        worker=prov.worker,
                        attempts=u.c.attempts + 1,
                        done_at=now,
                        call_key=None,
                        claimed_by=None,
                        lease_until=None,
                    )
                )
                done = int(res.rowcount)
                dup = len(answered) - done
            counter = u.c.errors if errored else u.c.skips
            conn.execute(
                u.update()
                .where(mine)
                .values(
                    {
                        u.c.attempts: u.c.attempts + 1,
                        counter: counter + 1,
                        u.c.status: sa.case(
                            (u.c.attempts + 1 >= max_attempts, FAILED), else_=PENDING
                        ),
                        u.c.call_key: None,
                        u.c.claimed_by: None,
                        u.c.lease_until: None,
                    }
                )
            )
            self._record_call(conn, job_id, claim, usage, prov, done, dup)
        return done

    def _record_call(
        self,
        conn: sa.Connection,
        job_id: str,
        claim: Claim,
        usage: CallUsage,
        prov: Provenance,
        done: int,
        dup: int,
    ) -> None:
        conn.execute(
            self.calls.insert().values(
                job_id=job_id,
                alias=claim.alias,
                call_key=claim.key,
                size=len(claim.units),
                answered=done,
                skipped=len(claim.units) - done - dup,
                duplicates=dup,
                outcome=usage.outcome,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=usage.cost_usd,
                replayed=prov.replayed,
                resumed=claim.resumed,
                worker=prov.worker,
                at=time.time(),
            )
        )

    # ------------------------------------------------------------------ reading
    def counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """alias -> {pending, done, failed, skips, errors, claimed}."""
        u = self.units
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    u.c.alias,
                    u.c.status,
                    sa.func.count(),
                    sa.func.sum(u.c.skips),
                    sa.func.sum(u.c.errors),
                    sa.func.count(u.c.call_key),
                )
                .where(u.c.job_id == job_id)
                .group_by(u.c.alias, u.c.status)
            ).all()
        for alias, status, n, skips, errors, claimed in rows:
            entry = out.setdefault(
                alias, {PENDING: 0, DONE: 0, FAILED: 0, "skips": 0, "errors": 0, "claimed": 0}
            )
            entry[status] = n
            entry["skips"] += int(skips or 0)
            entry["errors"] += int(errors or 0)
            entry["claimed"] += int(claimed or 0)
        return out

    def call_totals(self, job_id: str) -> dict[str, float]:
        c = self.calls
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(c.c.prompt_tokens), 0),
                    sa.func.coalesce(sa.func.sum(c.c.completion_tokens), 0),
                    sa.func.coalesce(sa.func.sum(c.c.cost_usd), 0.0),
                    sa.func.coalesce(sa.func.sum(c.c.duplicates), 0),
                    sa.func.coalesce(sa.func.sum(sa.cast(c.c.replayed, sa.Integer)), 0),
                    sa.func.coalesce(sa.func.sum(sa.cast(c.c.resumed, sa.Integer)), 0),
                ).where(c.c.job_id == job_id)
            ).one()
        names = ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "duplicates",
                 "replayed", "resumed")  # fmt: skip
        return {n: float(v) for n, v in zip(names, row, strict=True)}

    def rows(self, job_id: str) -> Iterator[sa.Row[Any]]:
        """Every unit of the job, in input order then alias (for export and checks)."""
        u = self.units
        with self.engine.connect() as conn:
            yield from conn.execute(
                sa.select(u).where(u.c.job_id == job_id).order_by(u.c.seq, u.c.alias)
            )

    def recent_usage(self, job_id: str, since: float) -> list[tuple[str, float, int]]:
        """(worker, wall time, tokens) of the job's paid calls since ``since`` (pacing after a
        restart, and what other workers use of a shared limit)."""
        c = self.calls
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.c.worker, c.c.at, c.c.prompt_tokens + c.c.completion_tokens).where(
                    (c.c.job_id == job_id) & (c.c.at >= since) & c.c.replayed.is_(False)
                )
            ).all()
        return [(w, float(at), int(t)) for w, at, t in rows]

    def peek(self, job_id: str, alias: str, size: int, calls: int) -> list[list[Unit]]:
        """The groups the next ``calls`` fresh claims would take (the estimate's sample)."""
        u = self.units
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(u.c.rid, u.c.text, u.c.attempts)
                .where((u.c.job_id == job_id) & (u.c.alias == alias) & (u.c.status == PENDING))
                .where(u.c.call_key.is_(None))
                .order_by(u.c.attempts, u.c.seq)
                .limit(size * calls)
            ).all()
        units = [Unit(r.rid, r.text, r.attempts) for r in rows]
        return [units[i : i + size] for i in range(0, len(units), size)]

    def pending_texts(self, job_id: str) -> dict[str, list[str]]:
        """alias -> the prompt text of every pending unit (the estimate's prompt sizes)."""
        u = self.units
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for alias, text in conn.execute(
                sa.select(u.c.alias, u.c.text).where(
                    (u.c.job_id == job_id) & (u.c.status == PENDING)
                )
            ):
                out.setdefault(alias, []).append(text)
        return out

    def add_tie_breaks(self, job_id: str, first: str, second: str, third: str) -> int:
        """Units for ``third`` on every record where ``first`` and ``second`` disagree."""
        u = self.units
        a, b = u.alias("a"), u.alias("b")
        with self.engine.begin() as conn:
            have = conn.execute(
                sa.select(sa.func.count())
                .select_from(u)
                .where((u.c.job_id == job_id) & (u.c.alias == third))
            ).scalar_one()
            if have:
                return 0
            rows = conn.execute(
                sa.select(a.c.rid, a.c.seq, a.c.text, a.c.record)
                .join(b, (a.c.job_id == b.c.job_id) & (a.c.rid == b.c.rid))
                .where((a.c.job_id == job_id) & (a.c.alias == first) & (b.c.alias == second))
                .where((a.c.status == DONE) & (b.c.status == DONE) & (a.c.result != b.c.result))
            ).all()
            if rows:
                conn.execute(
                    u.insert(),
                    [
                        {"job_id": job_id, "alias": third, "rid": r.rid, "seq": r.seq,
                         "text": r.text, "record": r.record, "status": PENDING, "attempts": 0,
                         "skips": 0, "errors": 0}
                        for r in rows
                    ],
                )  # fmt: skip
        return len(rows)
