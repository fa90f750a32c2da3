"""``tiergate train ...``: rebuild a learned artifact from shipped data (one command each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

train_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train learned artifacts.")


@train_app.command("escalation")
def train_escalation(
    data: Annotated[Path, typer.Option(help="JSONL of {prompt, weak, strong, weak_response}.")],
    out: Annotated[Path, typer.Option(help="Directory for gate.json and training.json.")],
    manifest: Annotated[
        Path | None, typer.Option(help="Also write the train/test split manifest here.")
    ] = None,
) -> None:
    """Train the learned escalation gate (the held-out split is never used)."""
    from gateway.escalation.train import train_files

    report = train_files(data, out, manifest)
    typer.echo(f"{report['model']}; cross-validation (train split only):")
    for row in report["cv"]["table"]:
        typer.echo(
            f"  C={row['C']:<5} gap recovered {row['cv_gap_recovered']:.3f}  "
            f"AUC {row['cv_auc']:.3f}"
        )
    typer.echo(f"recommended escalate_share: {report['recommended_escalate_share']}")
    typer.echo(f"wrote {out / 'gate.json'} and {out / 'training.json'}")
