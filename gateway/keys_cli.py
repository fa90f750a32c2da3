"""``tiergate keys ...``: the admin API's key operations from a terminal (an HTTP client)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer

keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Manage virtual keys.")

Gateway = Annotated[
    str, typer.Option(envvar="TIERGATE_URL", help="Gateway base URL (TIERGATE_URL).")
]
AdminKey = Annotated[
    str, typer.Option(envvar="TIERGATE_ADMIN_KEY", help="Admin key (TIERGATE_ADMIN_KEY).")
]


def call(gateway: str, admin_key: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        gateway.rstrip("/") + "/admin" + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {admin_key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        typer.echo(f"error {exc.code}: {detail}", err=True)
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        typer.echo(f"cannot reach {gateway}: {exc.reason}", err=True)
        raise typer.Exit(1) from None


def show(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


@keys_app.command("create")
def create(
    key_id: Annotated[str, typer.Argument(help="Key id, e.g. team-a-prod.")],
    team: Annotated[str, typer.Option(help="Team the key belongs to.")] = "default",
    alias: Annotated[list[str] | None, typer.Option(help="Allowed alias (repeat).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    tokens_per_day: Annotated[int | None, typer.Option(help="Token budget per UTC day.")] = None,
    usd_per_month: Annotated[float | None, typer.Option(help="USD budget per month.")] = None,
    gateway: Gateway = "http://127.0.0.1:4000",
    admin_key: AdminKey = "",
) -> None:
    """Create a key; its secret is printed once."""
    budgets = {"tokens_per_day": tokens_per_day, "usd_per_month": usd_per_month}
    body = {
        "id": key_id,
        "team": team,
        "aliases": alias or None,
        "quota": {"rpm": rpm, "tpm": tpm, "budgets": budgets},
    }
    show(call(gateway, admin_key, "POST", "/keys", body))


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    gateway: Gateway = "http://127.0.0.1:4000",
    admin_key: AdminKey = "",
) -> None:
    """List keys (from the rules and from the admin API) as a table."""
    data = call(gateway, admin_key, "GET", "/keys")
    if as_json:
        show(data)
        return
    from gateway.ops_cli import key_rows

    typer.echo(key_rows(data["data"]))


@keys_app.command("show")
def show_key(
    key_id: str, gateway: Gateway = "http://127.0.0.1:4000", admin_key: AdminKey = ""
) -> None:
    show(call(gateway, admin_key, "GET", f"/keys/{key_id}"))


@keys_app.command("rotate")
def rotate(
    key_id: str, gateway: Gateway = "http://127.0.0.1:4000", admin_key: AdminKey = ""
) -> None:
    """Replace a key's secret; the new one is printed once, the old one stops within 1 s."""
    show(call(gateway, admin_key, "POST", f"/keys/{key_id}/rotate"))


@keys_app.command("revoke")
def revoke(
    key_id: str, gateway: Gateway = "http://127.0.0.1:4000", admin_key: AdminKey = ""
) -> None:
    """Revoke a key on every replica within a second."""
    show(call(gateway, admin_key, "POST", f"/keys/{key_id}/revoke"))
