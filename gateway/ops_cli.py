"""``tiergate usage`` and ``tiergate targets``: the admin API as tables in a terminal.

HTTP clients of a running gateway (like ``tiergate keys``), using the same ``--gateway`` /
``--admin-key`` options and environment variables. ``--json`` prints the raw answer instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from gateway.keys_cli import AdminKey, Gateway, call

targets_app = typer.Typer(
    add_completion=False, help="Targets: breaker state and latency (table); eject, restore."
)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain aligned columns; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def key_rows(keys: Sequence[dict[str, Any]]) -> str:
    """``tiergate keys list``: one row per key."""
    headers = ["id", "team", "aliases", "rpm", "tpm", "budgets", "status"]
    rows = []
    for k in keys:
        quota = k.get("quota") or {}
        budgets = {n: v for n, v in (quota.get("budgets") or {}).items() if v is not None}
        rows.append(
            [
                k.get("id"),
                k.get("team"),
                ",".join(k.get("aliases") or []) or "all",
                quota.get("rpm"),
                quota.get("tpm"),
                " ".join(f"{n}={v}" for n, v in budgets.items()) or "-",
                "revoked" if k.get("revoked") else k.get("source", "managed"),
            ]
        )
    return table(headers, rows)


def usage(
    group_by: Annotated[
        str, typer.Option(help="Comma list of key, team, feature, alias, model.")
    ] = "team,alias,model",
    hours: Annotated[int, typer.Option(help="The last N hours.")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    gateway: Gateway = "http://127.0.0.1:4000",
    admin_key: AdminKey = "",
) -> None:
    """Usage and cost by team, key, feature, alias or model (table)."""
    since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    query = urlencode({"group_by": group_by, "from": since})
    data = call(gateway, admin_key, "GET", f"/usage?{query}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    dims = [d.strip() for d in group_by.split(",") if d.strip()]
    measures = ["requests", "tokens_in", "tokens_out", "usd"]
    rows = [[r.get(d) for d in dims] + [r.get(m) for m in measures] for r in data["data"]]
    if rows:
        totals = [sum(r[len(dims) + i] or 0 for r in rows) for i in range(len(measures))]
        rows.append(["total"] + [""] * (len(dims) - 1) + totals)
    typer.echo(table([*dims, *measures], rows))


@targets_app.callback(invoke_without_command=True)
def targets(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    gateway: Gateway = "http://127.0.0.1:4000",
    admin_key: AdminKey = "",
) -> None:
    """Each target's breaker state, calls, failures and time to first token (table)."""
    if ctx.invoked_subcommand is not None:
        return
    data = call(gateway, admin_key, "GET", "/targets")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    headers = ["target", "model", "provider", "state", "calls", "failures", "ttft_p50_ms", "reason"]
    rows = [[t.get("name" if h == "target" else h) for h in headers] for t in data["targets"]]
    typer.echo(table(headers, rows))


@targets_app.command("eject")
def eject(
    name: str,
    for_s: Annotated[float, typer.Option(help="Seconds before a probe may close it again.")] = 300,
    reason: Annotated[str, typer.Option(help="Shown in the admin API and the dashboard.")] = "cli",
    gateway: Gateway = "http://127.0.0.1:4000",
    admin_key: AdminKey = "",
) -> None:
    """Take a target out of every alias (its breaker opens)."""
    body = {"for_s": for_s, "reason": reason}
    t = call(gateway, admin_key, "POST", f"/targets/{name}/eject", body)
    typer.echo(f"{t['name']}: {t['state']} ({t['reason']})")


@targets_app.command("restore")
def restore(
    name: str, gateway: Gateway = "http://127.0.0.1:4000", admin_key: AdminKey = ""
) -> None:
    """Put an ejected target back (its breaker closes)."""
    t = call(gateway, admin_key, "POST", f"/targets/{name}/restore")
    typer.echo(f"{t['name']}: {t['state']}")
