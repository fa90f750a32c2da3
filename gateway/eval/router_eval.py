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

from gateway.routing.evaluate import RouterFigures, evaluate_router
from gateway.routing.learned import LearnedRouter
from gateway.routing.split import split_of
from gateway.routing.train import embed_all
from gateway.rules import RouterPolicy, RulesInvalid, load_rules

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


def router_policy(rules_path: Path, alias: str) -> tuple[RouterPolicy | None, Path]:
    """The alias's validated ``router:`` policy (None when it has none) and the rules' dir.

    The rules are validated as the gateway validates them (provider keys are treated as set:
    the evaluation calls no provider)."""
    try:
        rules = load_rules(rules_path, env=AnyEnv())
    except RulesInvalid as exc:
        raise RouterEvalError(str(exc)) from None
    if alias not in rules.aliases:
        raise RouterEvalError(f"{rules_path}: no alias {alias!r}")
    return rules.aliases[alias].router, rules.base_dir


def router_artifact_for(rules_path: Path, alias: str) -> Path:
    """The learned router's artifact directory configured on ``alias`` (relative paths are
    relative to the rules file's directory)."""
    policy, base = router_policy(rules_path, alias)
    if policy is None:
        raise RouterEvalError(f"{rules_path}: alias {alias!r} has no router block")
    if policy.kind != "learned" or policy.artifact is None:
        raise RouterEvalError(f"{rules_path}: alias {alias!r}: router is not kind: learned")
    return (base / policy.artifact).resolve()


def resolve_artifact(rules: Path | None, alias: str | None) -> Path:
    """What ``eval router`` evaluates: the learned router configured on the alias (by default
    the ``auto`` alias of the rules ``make run`` serves)."""
    return router_artifact_for(rules or DEFAULT_RULES, alias or DEFAULT_ALIAS)


class AnyEnv(dict[str, str]):
    """Every environment variable counts as set (a rules check that reaches no provider)."""

    def __contains__(self, key: object) -> bool:
        return True


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
