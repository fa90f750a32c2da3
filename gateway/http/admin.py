"""The admin API, behind its own credential (never a user key).

``GET /admin/targets``: each target's breaker state, why it is open, recent error ratio and
time-to-first-chunk percentiles, plus the aliases. ``POST /admin/targets/{name}/eject`` and
``/restore``: manual control, e.g. to drain a provider before maintenance. ``GET /admin/rules``:
the rules this replica runs (``tiergate check-config --diff`` compares a file with them).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from cache.keys import purge_pattern
from gateway.errors import AuthError, GatewayError, InvalidRequest, UnknownRoute
from gateway.governance.keystore import hash_key
from gateway.governance.usage import DIMENSIONS
from gateway.http.admin_keys import add_key_routes
from gateway.http.edge import RuntimeHolder
from gateway.runtime import Runtime

# The usage report walks hours between from and to: far-off dates would overflow the calendar.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class EjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    for_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    reason: Annotated[str, Field(max_length=200)] = "manual"


def admin_runtime(holder: RuntimeHolder, authorization: str | None) -> Runtime:
    """The current runtime, if ``authorization`` carries the admin key (else AuthError)."""
    runtime = holder.current
    if runtime is None:
        raise GatewayError("The gateway is starting; try again.", status=503)
    expected = runtime.rules.admin.key_sha256
    scheme, _, secret = (authorization or "").partition(" ")
    if expected is None or scheme.lower() != "bearer" or not secret:
        raise AuthError("The admin API needs the admin key: 'Authorization: Bearer <key>'.")
    if not hmac.compare_digest(hash_key(secret.strip()), expected):
        raise AuthError("Incorrect admin key.")
    return runtime


def admin_router(holder: RuntimeHolder, json_response: Callable[..., Response]) -> APIRouter:
    router = APIRouter(prefix="/admin")

    def authorized(authorization: str | None) -> Runtime:
        return admin_runtime(holder, authorization)

    def known(runtime: Runtime, name: str) -> None:
        if name not in runtime.rules.targets:
            raise UnknownRoute(f"No target named '{name}'.")

    @router.get("/targets")
    async def targets(authorization: Annotated[str | None, Header()] = None) -> Response:
        runtime = authorized(authorization)
        body: dict[str, Any] = {
            "config_version": runtime.config_version,
            "aliases": {n: a.target_names() for n, a in runtime.rules.aliases.items()},
            "resilience": runtime.rules.resilience.model_dump(),
            "targets": [runtime.target_status(name) for name in runtime.rules.targets],
        }
        return json_response(body)

    @router.post("/targets/{name}/eject")
    async def eject(
        name: str,
        body: Annotated[EjectBody | None, Body()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        runtime = authorized(authorization)
        known(runtime, name)
        request = body or EjectBody()
        runtime.eject(name, request.for_s, f"manual: {request.reason}")
        return json_response(runtime.target_status(name))

    @router.post("/targets/{name}/restore")
    async def restore(name: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        runtime = authorized(authorization)
        known(runtime, name)
        runtime.restore(name)
        return json_response(runtime.target_status(name))

    @router.post("/cache/purge")
    async def purge(
        body: Annotated[PurgeBody, Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        runtime = authorized(authorization)
        pattern = purge_pattern(body.tenant, body.alias, body.namespace)
        removed = await runtime.exact_store.purge(pattern)
        semantic = await purge_semantic(runtime, body)
        return json_response({"purged": removed, "pattern": pattern, "semantic_purged": semantic})

    @router.get("/usage")
    async def usage(
        group_by: str = "team,alias,model",
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        authorized(authorization)
        book = holder.usage
        if book is None:
            raise GatewayError("The gateway is starting; try again.", status=503)
        since, until = report_span(start, end)
        dims = [d.strip() for d in group_by.split(",") if d.strip()]
        unknown = [d for d in dims if d not in DIMENSIONS]
        if unknown:
            raise InvalidRequest(f"Unknown group_by: {', '.join(unknown)}.", param="group_by")
        await book.flush()  # include this replica's last second
        rows = await book.report(since, until, dims)
        return json_response({"from": since.isoformat(), "to": until.isoformat(), "data": rows})

    add_key_routes(router, authorized, json_response)

    return with_rules_route(router, authorized, json_response)


def report_span(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The usage report's [from, to): ISO 8601, UTC unless stated, within EARLIEST..LATEST."""
    now = datetime.now(UTC)
    try:
        since = datetime.fromisoformat(start) if start else now - timedelta(days=1)
        until = datetime.fromisoformat(end) if end else now + timedelta(hours=1)
    except ValueError:
        raise InvalidRequest("from/to must be ISO 8601 times.", param="from") from None
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if not (EARLIEST <= since <= LATEST and EARLIEST <= until <= LATEST):
        raise InvalidRequest(
            f"from/to must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}.", param="from"
        )
    return since, until


class PurgeBody(BaseModel):
    """Which cached answers to drop; every field given must match, none given means all."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None
    alias: str | None = None
    namespace: str | None = None


async def purge_semantic(runtime: Runtime, body: PurgeBody) -> int:
    """The semantic cache's share of a purge: the same tenant / alias / namespace match."""
    if runtime.semantic is None:
        return 0
    if body.tenant is None and body.alias is None and body.namespace is None:
        return await runtime.semantic.clear()
    return await runtime.semantic.purge(body.tenant, body.alias, body.namespace)


def with_rules_route(
    router: APIRouter,
    authorized: Callable[[str | None], Runtime],
    json_response: Callable[..., Response],
) -> APIRouter:
    """Add ``GET /admin/rules`` (the validated rules this replica runs, defaults filled in)."""

    @router.get("/rules")
    async def rules(authorization: Annotated[str | None, Header()] = None) -> Response:
        runtime = authorized(authorization)
        body = {
            "config_version": runtime.config_version,
            "rules": runtime.rules.model_dump(mode="json"),
        }
        return json_response(body)

    return router
