"""Counters the sim keeps about what it served (``GET /_sim/stats``); one per server object."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class SimStats:
    requests: int = 0
    streams: int = 0
    rate_limited: int = 0
    by_path: Counter[bytes] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    graded: Counter[str] = field(default_factory=Counter)  # quality mode: answers per model
    correct: Counter[str] = field(default_factory=Counter)  # ... of which right

    def reset(self) -> None:
        self.graded.clear()
        self.correct.clear()
        self.requests = self.streams = self.rate_limited = 0
        self.by_path.clear()
        self.by_model.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "streams": self.streams,
            "rate_limited": self.rate_limited,
            "faults_injected": sum(self.faults.values()),
            "by_path": {path.decode(errors="replace"): n for path, n in self.by_path.items()},
            "by_model": dict(self.by_model),
            "faults": dict(self.faults),
            "quality": {
                model: {"answered": n, "correct": self.correct[model]}
                for model, n in self.graded.items()
            },
        }
