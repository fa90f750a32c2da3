"""Summaries of ``py-spy record -f raw`` output: top inclusive and self frames.

    .venv/bin/python -m bench.overhead_profile profile.txt [--top 30]

A raw line is ``frame;frame;...;leaf COUNT`` with the root first; ``--idle`` samples are kept
out unless py-spy was told to include them. Only the main thread (the event loop) is counted:
stacks rooted in ``threading._bootstrap`` (the default executor's parked workers, which py-spy
does not always see as idle) are left out and reported as a count. Inclusive share counts a
frame once per sample even when it recurses.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_LINENO = re.compile(r":\d+\)$")
_SITE = re.compile(r"\S*/site-packages/")  # any venv's site-packages prefix


def _norm(frame: str) -> str:
    # "handle (gateway/http/edge.py:123)" -> "handle (gateway/http/edge.py)": merge line numbers
    frame = _LINENO.sub(")", frame.strip())
    return _SITE.sub("", frame)


def summarize(path: Path, top: int = 25) -> dict[str, object]:
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = other_threads = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_norm(f) for f in stack.split(";") if f]
        if frames and "_bootstrap" in frames[0] and "threading" in frames[0]:
            other_threads += n  # executor / helper threads (mostly parked): not the event loop
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        if frames:
            leaf[frames[-1]] += n
    pct = 100.0 / total if total else 0.0
    return {
        "samples": total,
        "other_thread_samples": other_threads,
        "inclusive": [(f, round(c * pct, 1)) for f, c in inclusive.most_common(top)],
        "self": [(f, round(c * pct, 1)) for f, c in leaf.most_common(top)],
    }


def render(summary: dict[str, object]) -> str:
    out = [
        f"main-thread samples: {summary['samples']} (other threads, left out:"
        f" {summary.get('other_thread_samples', 0)})",
        "",
        "top inclusive (% of main-thread samples):",
    ]
    out += [f"  {p:5.1f}  {f}" for f, p in summary["inclusive"]]  # type: ignore[attr-defined]
    out += ["", "top self:"]
    out += [f"  {p:5.1f}  {f}" for f, p in summary["self"]]  # type: ignore[attr-defined]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("raw", type=Path)
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    print(render(summarize(a.raw, a.top)))


if __name__ == "__main__":
    main()
