"""The ``tiergate eval router`` command (typer); the work is in ``router_eval`` (numpy, lazy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def eval_router(
    data: Annotated[list[Path], typer.Option(help="JSONL of {prompt, weak, strong} (repeat).")],
    rules: Annotated[Path | None, typer.Option(help="Routing rules (default: the demo's).")] = None,
    alias: Annotated[str | None, typer.Option(help="Alias whose router to evaluate.")] = None,
    split: Annotated[str, typer.Option(help="all, or the artifact's train/test split.")] = "all",
) -> None:
    """RouteLLM's protocol: the curve, then JSON {prompts, apgr, cpt50, cpt80} as last line."""
    from gateway.eval.router_eval import run_router_eval

    if split not in ("all", "train", "test"):
        raise typer.BadParameter("split: all, train or test")
    raise typer.Exit(run_router_eval(data, rules, alias, split))  # type: ignore[arg-type]
