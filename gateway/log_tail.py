"""The last request log records in memory, for the dashboard's live tail (``/admin/logs``).

Bounded (oldest out first) and fed where the structured log line is written
(``gateway.telemetry``), so the tail shows exactly what the log shows: ids, alias, target,
tokens, cost, timings, outcome; never prompt text. Records are kept as they arrive and rendered
to dicts only when someone reads the tail, so a request pays one deque append. Per process: with
several replicas, each shows its own tail.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

Render = Callable[[Any], dict[str, Any]]


class LogTail:
    """A ring of (sequence number, wall time, record)."""

    def __init__(self, capacity: int, render: Render) -> None:
        self._ring: deque[tuple[int, float, Any]] = deque(maxlen=capacity)
        self._render = render
        self._seq = 0

    def add(self, record: Any) -> None:
        self._seq += 1
        self._ring.append((self._seq, time.time(), record))

    @property
    def last(self) -> int:
        return self._seq

    def since(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Records newer than ``after`` (at most ``limit``, the newest), oldest first."""
        fresh = [entry for entry in self._ring if entry[0] > after][-limit:]
        return [{"seq": seq, "ts": round(ts, 3), **self._render(rec)} for seq, ts, rec in fresh]
