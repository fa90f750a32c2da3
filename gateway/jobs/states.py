"""The batch state machine, as pure functions over ``BatchRecord`` (no I/O, no clock).

Policy (OpenAI's statuses and the order they come in)::

    validating -> in_progress -> finalizing -> completed
         |             |  \\
         v             |   -> expired        (24 h window passed; undone lines get error lines)
       failed          v
    (file invalid)  cancelling -> cancelled  (lines running finish; the rest never start)

``validating`` may also go to ``cancelling`` (cancelled before it started) or ``expired``.
Every transition stamps ``<status>_at``. A terminal status (completed, failed, expired,
cancelled) never changes again. Cancelling is idempotent; cancelling a finished batch is a
409 ``StateConflict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import StateConflict
from gateway.jobs.records import BatchRecord, Counts, Status

ALLOWED: Mapping[str, frozenset[str]] = {
    "validating": frozenset({"in_progress", "failed", "cancelling", "expired"}),
    "in_progress": frozenset({"finalizing", "cancelling", "expired"}),
    "finalizing": frozenset({"completed"}),
    "cancelling": frozenset({"cancelled"}),
}
WINDOW_S = {"24h": 24 * 3600}


class IllegalTransition(ValueError):
    """A transition the state machine does not allow (a bug or a lost race: re-read)."""


def advance(record: BatchRecord, to: Status, now: int, **changes: Any) -> BatchRecord:
    """``record`` moved to ``to`` at ``now`` (with ``changes``), or ``IllegalTransition``."""
    if to not in ALLOWED.get(record.status, frozenset()):
        raise IllegalTransition(f"{record.id}: {record.status} -> {to}")
    return record.model_copy(update={"status": to, f"{to}_at": now, **changes})


def cancel(record: BatchRecord, now: int) -> BatchRecord:
    """What ``POST /v1/batches/{id}/cancel`` does to a record."""
    if record.status in ("cancelling", "cancelled"):
        return record
    if record.status in ("validating", "in_progress"):
        return advance(record, "cancelling", now)
    raise StateConflict(f"Cannot cancel a batch with status '{record.status}'.")


def expired(record: BatchRecord, now: int) -> bool:
    """Whether the batch's completion window has passed while it still had work to do."""
    return record.status in ("validating", "in_progress") and now >= record.expires_at


def ending(record: BatchRecord, now: int, pending: int) -> Status:
    """The status a batch ends in once no more lines will be started (``pending``: lines that
    never ran)."""
    if record.status == "cancelling":
        return "cancelled"
    if pending and expired(record, now):
        return "expired"
    return "completed"


def finish(
    record: BatchRecord,
    now: int,
    pending: int,
    counts: Counts,
    output_file_id: str | None,
    error_file_id: str | None,
) -> BatchRecord:
    """The final record: files and counts written, status terminal. ``in_progress`` passes
    through ``finalizing`` (both stamped) on its way to ``completed``."""
    to = ending(record, now, pending)
    files = {
        "request_counts": counts,
        "output_file_id": output_file_id,
        "error_file_id": error_file_id,
    }
    if to == "completed":
        if record.status == "in_progress":
            record = advance(record, "finalizing", now)
        return advance(record, "completed", now, **files)
    return advance(record, to, now, **files)
