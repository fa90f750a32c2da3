"""``tiergate eval router``: score a router on labeled prompts with RouteLLM's protocol.

Each line of the data file is ``{"prompt": str, "weak": 0|1|float, "strong": 0|1|float, ...}``;
other fields are ignored and never reach the router, which sees only the prompt (and its
MiniLM embedding when the artifact uses one). Printed: the weak and strong lines, the curve at
the protocol's 10-quantile thresholds, the APGR of a 100-bin sweep (information only), the
share really sent strong at a few ``strong_share`` settings (calibration check) and, as the
LAST line, ``{"prompts": N, "apgr": x, "cpt50": y, "cpt80": z}`` (shares as fractions).

Which router: the one configured on ``--alias`` of ``--rules`` (``router.kind: learned``,
``router.artifact`` relative to the rules file's directory); by default the ``auto`` alias of
``routing_rules/default.yaml``. ``--split test`` keeps only the prompts the artifact's split
held out of training (the same stable hash, with the artifact's split seed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import yaml

from gateway.routing.evaluate import RouterFigures, evaluate_router
from gateway.routing.learned import LearnedRouter
from gateway.routing.split import split_of
from gateway.routing.train import embed_all

DEFAULT_RULES = Path("routing_rules/default.yaml")
DEFAULT_ALIAS = "auto"
# Until the rules schema carries ``router:`` blocks, an alias without one evaluates this.
SHIPPED_ARTIFACT = Path("routing_rules/artifacts/router")
SplitChoice = Literal["all", "train", "test"]
CALIBRATION_SHARES = (0.1, 0.2, 0.3, 0.5)
Array = np.ndarray[Any, Any]


class RouterEvalError(Exception):
    """A data file or rules problem worth one line on stderr (exit 2)."""


@dataclass(frozen=True, slots=True)
class Labeled:
    prompt: str
    weak: float
    strong: float


def read_labeled(path: Path) -> list[Labeled]:
    """Rows of a JSONL file; only ``prompt``, ``weak`` and ``strong`` are kept."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
            out.append(Labeled(str(row["prompt"]), float(row["weak"]), float(row["strong"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise RouterEvalError(
                f"{path}:{n}: not a {{prompt, weak, strong}} row ({exc})"
            ) from exc
    if not out:
        raise RouterEvalError(f"{path}: no rows")
    return out


def router_block(rules_path: Path, alias: str) -> dict[str, Any] | None:
    """The alias's raw ``router:`` mapping, or None when the alias has none."""
    try:
        rules: Any = yaml.safe_load(rules_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RouterEvalError(f"{rules_path}: {exc}") from exc
    aliases = rules.get("aliases", {}) if isinstance(rules, dict) else {}
    if alias not in aliases:
        raise RouterEvalError(f"{rules_path}: no alias {alias!r}")
    block = aliases[alias].get("router") if isinstance(aliases[alias], dict) else None
    return block if isinstance(block, dict) else None


def router_artifact_for(rules_path: Path, alias: str) -> Path:
    """The learned router's artifact directory configured on ``alias`` (relative paths are
    relative to the rules file's directory). To be re-pointed at the validated rules."""
    block = router_block(rules_path, alias)
    if block is None:
        raise RouterEvalError(f"{rules_path}: alias {alias!r} has no router block")
    if block.get("kind") != "learned" or "artifact" not in block:
        raise RouterEvalError(f"{rules_path}: alias {alias!r}: router is not kind: learned")
    return (rules_path.parent / str(block["artifact"])).resolve()


def resolve_artifact(rules: Path | None, alias: str | None) -> Path:
    """What ``eval router`` evaluates: the configured artifact, or (only for the default rules
    while they carry no ``router:`` block yet) the shipped artifact."""
    path = rules or DEFAULT_RULES
    name = alias or DEFAULT_ALIAS
    if rules is None and router_block(path, name) is None:
        return SHIPPED_ARTIFACT
    return router_artifact_for(path, name)


def router_scores(router: LearnedRouter, prompts: Sequence[str]) -> Array:
    """Score every prompt, embedding each (as served) only if the model uses embeddings."""
    embeddings: list[np.ndarray[Any, Any] | None] = [None] * len(prompts)
    if router.needs_embedding:
        embeddings = list(embed_all(prompts))
    return np.array(
        [router.score(p, e) for p, e in zip(prompts, embeddings, strict=True)], dtype=np.float64
    )


def print_figures(figures: RouterFigures, fine_apgr: float, out: TextIO) -> None:
    print(f"prompts: {figures.prompts}", file=out)
    print(f"weak (all calls cheap): {figures.weak:.4f}", file=out)
    print(f"strong (all calls strong): {figures.strong:.4f}", file=out)
    print("threshold   strong%   perf     PGR", file=out)
    for p in figures.curve:
        print(
            f"{p.threshold:9.4f}   {100 * p.strong_share:6.1f}%  {p.performance:.4f}  {p.pgr:6.3f}",
            file=out,
        )
    print(f"APGR (10 bins, RouteLLM protocol): {figures.apgr:.4f}", file=out)
    print(f"APGR (100 bins, finer sweep): {fine_apgr:.4f}", file=out)
    print(
        f"CPT(50%): {100 * figures.cpt50:.1f}% strong calls; CPT(80%): {100 * figures.cpt80:.1f}%",
        file=out,
    )


def print_calibration(
    router: LearnedRouter, scores: Array, weak: Array, strong: Array, out: TextIO
) -> None:
    """At each ``strong_share`` an operator may set: the share this data really sends strong
    (``threshold_for`` is calibrated on the training prompts) and the gap recovered there."""
    gap = float(strong.mean() - weak.mean())
    print("strong_share  realised  perf    PGR", file=out)
    for share in CALIBRATION_SHARES:
        chosen = scores >= router.threshold_for(share)
        perf = float(np.where(chosen, strong, weak).mean())
        pgr = (perf - float(weak.mean())) / gap if gap else 0.0
        print(f"{share:12.2f}  {100 * chosen.mean():6.1f}%  {perf:.4f}  {pgr:6.3f}", file=out)


def run_router_eval(
    data: Sequence[Path],
    rules: Path | None,
    alias: str | None,
    split: SplitChoice = "all",
    out: TextIO = sys.stdout,
) -> int:
    """The command's body; returns the exit code (2 on a data, rules or artifact problem)."""
    try:
        artifact = resolve_artifact(rules, alias)
        router = LearnedRouter.load(artifact)
        rows = [r for path in data for r in read_labeled(path)]
    except (RouterEvalError, OSError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if split != "all":
        rows = [r for r in rows if split_of(r.prompt, router.split_seed) == split]
        if not rows:
            print(f"no rows in split {split!r}", file=sys.stderr)
            return 2
    print(f"router: {artifact} (version {router.version}); split: {split}", file=out)
    scores = router_scores(router, [r.prompt for r in rows])
    weak = np.array([r.weak for r in rows])
    strong = np.array([r.strong for r in rows])
    figures = evaluate_router(scores, weak, strong)
    print_figures(figures, evaluate_router(scores, weak, strong, bins=100).apgr, out)
    print_calibration(router, scores, weak, strong, out)
    print(json.dumps(figures.summary()), file=out)
    return 0
