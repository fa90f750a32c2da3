"""``tiergate train ...``: rebuild learned artifacts from shipped data (the router; the cache
verifier joins at merge). Each command is deterministic and writes its data source, split and
the command that rebuilds it beside the artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

train_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train learned parts.")


@train_app.command("router")
def train_router_cmd(
    data: Annotated[
        list[Path], typer.Option(help="JSONL of {prompt, weak, strong, subject?} (repeat).")
    ],
    out: Annotated[Path, typer.Option(help="Artifact directory to write.")],
    split_seed: Annotated[int, typer.Option(help="Seed of the stable-hash test split.")] = 0,
    embedding: Annotated[
        bool, typer.Option(help="Use the MiniLM embedding (off: words only, no model).")
    ] = True,
) -> None:
    """Fit the learned router on the train split (5-fold CV picks the ensemble), calibrate
    strong_share from out-of-fold scores, write weights.npz + router.json to --out."""
    from gateway.routing.train import train_router

    for path in data:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="--data")
    try:
        train_router(data, out, split_seed=split_seed, use_embedding=embedding)
    except (ValueError, KeyError) as exc:
        typer.echo(f"cannot train: {exc}", err=True)
        raise typer.Exit(2) from None
