"""Admin API routes the dashboard (``/ui``) reads, beside ``/admin/targets`` and ``/admin/usage``.

``GET /admin/logs?after=N``: the newest request log records (``gateway.log_tail``), for a live
tail. ``GET /admin/usage/series?group_by=team&hours=24``: usage per UTC hour, for spend over
time. ``GET /admin/budgets``: every configured budget with what was used in its period (UTC day,
UTC month), from the usage book (settled usage; reservations in flight are not counted).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from gateway.errors import GatewayError, InvalidRequest
from gateway.governance.usage import DIMENSIONS, UsageBook
from gateway.http.admin import admin_runtime
from gateway.http.edge import RuntimeHolder
from gateway.rules import Budgets
from gateway.runtime import Runtime
from gateway.telemetry import Telemetry

PERIOD_FIELDS = {
    "day": ("calls_per_day", "tokens_per_day", "usd_per_day"),
    "month": ("tokens_per_month", "usd_per_month"),
}


def _book(holder: RuntimeHolder) -> UsageBook:
    if holder.usage is None:
        raise GatewayError("The gateway is starting; try again.", status=503)
    return holder.usage


def _limits(budgets: Budgets) -> dict[str, float]:
    return {k: v for k, v in budgets.model_dump().items() if v is not None}


async def budget_scopes(runtime: Runtime) -> list[tuple[str, str, dict[str, float]]]:
    """(dimension, name, limits) of every scope that has a budget; dimension "" is global."""
    gov = runtime.rules.governance
    scopes: list[tuple[str, str, dict[str, float]]] = []
    if _limits(gov.global_quota.budgets):
        scopes.append(("", "all", _limits(gov.global_quota.budgets)))
    for dim, table in (("team", gov.teams), ("feature", gov.features)):
        scopes.extend((dim, n, _limits(q.budgets)) for n, q in table.items() if _limits(q.budgets))
    for record in await runtime.keys.all():
        if _limits(record.quota.budgets):
            scopes.append(("key", record.id, _limits(record.quota.budgets)))
    return scopes


def _used(row: dict[str, Any] | None, field: str) -> float:
    if row is None:
        return 0.0
    if field.startswith("calls"):
        return float(row["requests"])
    if field.startswith("tokens"):
        return float(row["tokens_in"] + row["tokens_out"])
    return float(row["usd"])


def dashboard_router(
    holder: RuntimeHolder, telemetry: Telemetry, json_response: Callable[..., Response]
) -> APIRouter:
    router = APIRouter(prefix="/admin")

    def authorized(authorization: str | None) -> Runtime:
        return admin_runtime(holder, authorization)

    @router.get("/logs")
    async def logs(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        authorized(authorization)
        lines = telemetry.tail.since(after, limit)
        return json_response({"last": telemetry.tail.last, "lines": lines})

    @router.get("/usage/series")
    async def series(
        group_by: str = "team",
        hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        authorized(authorization)
        dims = [d.strip() for d in group_by.split(",") if d.strip()]
        if any(d not in DIMENSIONS for d in dims):
            raise InvalidRequest(f"group_by: one of {', '.join(DIMENSIONS)}.", param="group_by")
        book = _book(holder)
        await book.flush()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        points = []
        for back in range(hours - 1, -1, -1):
            start = now - timedelta(hours=back)
            rows = await book.report(start, start + timedelta(hours=1), dims)
            points.append({"hour": start.isoformat(), "rows": rows})
        return json_response({"group_by": dims, "points": points})

    @router.get("/budgets")
    async def budgets(authorization: Annotated[str | None, Header()] = None) -> Response:
        runtime = authorized(authorization)
        book = _book(holder)
        await book.flush()
        now = datetime.now(UTC)
        starts = {
            "day": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "month": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        }
        reports: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        out = []
        for dim, name, limits in await budget_scopes(runtime):
            for period, fields in PERIOD_FIELDS.items():
                if (dim, period) not in reports:
                    rows = await book.report(
                        starts[period], now + timedelta(hours=1), [dim] if dim else []
                    )
                    reports[(dim, period)] = {r.get(dim, "all"): r for r in rows}
                row = reports[(dim, period)].get(name)
                for field in fields:
                    if field in limits:
                        used = _used(row, field)
                        out.append(
                            {
                                "scope": dim or "global",
                                "name": name,
                                "budget": field,
                                "limit": limits[field],
                                "used": round(used, 6),
                                "ratio": round(used / limits[field], 4) if limits[field] else None,
                            }
                        )
        return json_response({"data": out, "at": now.isoformat()})

    return router
