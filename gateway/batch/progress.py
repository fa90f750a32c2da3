"""The live progress line and the final report of a batch run (written to stderr).

On a terminal the line is redrawn in place a few times a second; otherwise (logs, CI) one line
every few seconds. Records/s and the ETA count this process's answers since it started.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from gateway.batch.pacing import Pacer

if TYPE_CHECKING:
    from gateway.batch.runner import RunTotals
    from gateway.batch.spec import JobSpec
    from gateway.batch.store import Store


def _eta(seconds: float) -> str:
    if math.isnan(seconds) or math.isinf(seconds):  # no rate yet
        return "--"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


@dataclass
class Progress:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 0.0  # 0: 0.25 s on a terminal, 5 s otherwise
    todo: int = 0
    done_before: int = 0
    last: float = 0.0

    def begin(self, store: Store, spec: JobSpec) -> None:
        counts = store.counts(spec.job_id)
        self.todo = sum(c["pending"] for c in counts.values())
        self.done_before = sum(c["done"] for c in counts.values())
        if not self.every_s:
            self.every_s = 0.25 if self.stream.isatty() else 5.0

    def line(self, totals: RunTotals, pacer: Pacer, now: float) -> str:
        elapsed = max(1e-6, now - totals.started)
        rate = totals.answered / elapsed
        left = max(0, self.todo - totals.answered)
        tpm = pacer.tokens.used(time.monotonic())
        limit = f"/{int(pacer.tpm):,}" if pacer.tpm else ""
        total = self.done_before + self.todo
        share = (self.done_before + totals.answered) / total if total else 1.0
        filled = int(share * 20)
        bar = f"[{'#' * filled}{'-' * (20 - filled)}] {share:4.0%} "
        return bar + (
            f"{self.done_before + totals.answered:,} done, {left:,} left | {rate:,.1f} rec/s | "
            f"{int(tpm):,}{limit} tok/min | calls {totals.calls:,} (skips {totals.skips}, "
            f"errors {totals.errors}, 429s {pacer.rate_limited}) | ${totals.cost_usd:,.4f} | "
            f"ETA {_eta(left / rate if rate else float('inf'))}"
        )

    def update(self, totals: RunTotals, pacer: Pacer, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every_s:
            return
        self.last = now
        text = self.line(totals, pacer, now)
        if self.stream.isatty() and not final:
            self.stream.write("\r" + text[:160].ljust(160))
        else:
            self.stream.write(("\n" if self.stream.isatty() else "") + text + "\n")
        self.stream.flush()
