"""The request log's writer: whole JSON lines, many per system call.

When to use: ``Telemetry`` writes every log line (requests, alerts, breaker changes) through
one ``LineWriter``. Policy: a line is queued, and the queue goes to the stream in one ``write``
at the end of the event loop's current turn (``call_soon``), when it passes 64 KiB, or when
``flush`` is called (once a second and at shutdown). So under load one system call carries the
lines of every request that finished in the same turn, instead of one call per line (what a
stdout opened with ``PYTHONUNBUFFERED=1``, the usual container setting, otherwise does), while a
line still leaves within the turn it was written in. Lines are never split: another writer on
the same stream can only ever come between two lines. Outside an event loop (CLI tools) a line
is written at once.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

MAX_QUEUED_CHARS = 64 * 1024


class LineWriter:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._chars = 0
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush waits on

    def write(self, line: str) -> None:
        """Queue one line (with its newline)."""
        self._lines.append(line)
        self._chars += len(line)
        if self._chars >= MAX_QUEUED_CHARS:
            self.flush()
        else:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            if self._scheduled is not loop:  # none yet, or on a loop that has ended
                self._scheduled = loop
                loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._scheduled = None
        self.flush()

    def flush(self) -> None:
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            self._chars = 0
            self._stream.write(text)
        self._stream.flush()
