"""The routes off the hot path, on FastAPI: models, health, readiness, metrics, and JSON 404s."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    StateUnavailable,
    UnknownModel,
    UnknownRoute,
)
from gateway.http.edge import RuntimeHolder
from gateway.http.errors import error_headers, error_payload
from gateway.state import StateStore
from gateway.telemetry import Telemetry


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, headers=headers, media_type="application/json"
    )


def error_response(err: GatewayError, request: Request) -> Response:
    request_id = request.headers.get("x-request-id", "-")
    headers = {
        k.decode(): v.decode() for k, v in error_headers(err, request_id) if k != b"content-type"
    }
    return json_response(error_payload(err), err.status, headers)


def add_routes(
    app: FastAPI,
    holder: RuntimeHolder,
    telemetry: Telemetry,
    state: Callable[[], StateStore | None],
) -> None:
    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, exc: GatewayError) -> Response:
        return error_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            err: GatewayError = UnknownRoute(
                f"Unknown request URL: {request.method} {request.url.path}."
            )
        elif exc.status_code == 405:
            err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        else:
            err = GatewayError(str(exc.detail), status=exc.status_code)
        return error_response(err, request)

    @app.exception_handler(RedisError)
    @app.exception_handler(OSError)
    async def on_state_down(request: Request, exc: Exception) -> Response:
        err = StateUnavailable("The state store is unreachable; try again shortly.")
        return error_response(err, request)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(InvalidRequest(str(exc.errors()[0].get("msg"))), request)

    @app.get("/v1/models")
    @app.get("/models", include_in_schema=False)
    async def models(
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        runtime = holder.current
        if runtime is None:
            raise GatewayError("The gateway is starting; try again.", status=503)
        principal = await runtime.keys.authenticate(authorization)
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "tiergate"}
            for name in runtime.rules.aliases
            if principal.aliases is None or name in principal.aliases
        ]
        return json_response({"object": "list", "data": data})

    @app.get("/v1/models/{model_id:path}")
    @app.get("/models/{model_id:path}", include_in_schema=False)
    async def model(
        model_id: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        runtime = holder.current
        if runtime is None:
            raise GatewayError("The gateway is starting; try again.", status=503)
        principal = await runtime.keys.authenticate(authorization)
        allowed = principal.aliases is None or model_id in principal.aliases
        if model_id not in runtime.rules.aliases or not allowed:
            raise UnknownModel(f"The model '{model_id}' does not exist.", param="model")
        body = {"id": model_id, "object": "model", "created": int(time.time())}
        return json_response(body | {"owned_by": "tiergate"})

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        runtime = holder.current
        store = state()
        checks = {
            "config": runtime is not None,
            "state_store": store is not None and await store.ping(),
        }
        ready = all(checks.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "config_version": runtime.config_version if runtime else None,
        }
        headers = {} if ready else {"retry-after": "1"}
        return json_response(body, 200 if ready else 503, headers)

    from gateway.http.admin import admin_router
    from gateway.http.admin_dashboard import dashboard_router
    from gateway.http.ui import add_ui

    app.include_router(admin_router(holder, json_response))
    app.include_router(dashboard_router(holder, telemetry, json_response))
    add_ui(app)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)
