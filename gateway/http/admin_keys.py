"""Admin API for virtual keys: create (the secret is shown once), list, show, update, rotate,
revoke. Keys declared in the rules are listed with ``source: config`` and cannot be changed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidRequest, UnknownRoute
from gateway.governance.keystore import KeyRecord
from gateway.rules import NAME, Quota
from gateway.runtime import Runtime


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=NAME)]
    team: str = "default"
    aliases: list[str] | None = None
    quota: Quota = Quota()
    on_exhausted: Literal["reject", "downgrade"] = "reject"
    priority: Literal["interactive", "standard", "batch"] = "standard"
    clearance: str = "public"
    metadata: dict[str, str] = {}


class KeyChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str | None = None
    aliases: list[str] | None = None
    quota: Quota | None = None
    on_exhausted: Literal["reject", "downgrade"] | None = None
    priority: Literal["interactive", "standard", "batch"] | None = None
    clearance: str | None = None
    metadata: dict[str, str] | None = None


def known_aliases(runtime: Runtime, aliases: list[str] | None) -> None:
    """A key may only name aliases the rules define (400 otherwise), at creation and update."""
    unknown = [a for a in aliases or () if a not in runtime.rules.aliases]
    if unknown:
        raise InvalidRequest(f"Unknown aliases: {', '.join(unknown)}.", param="aliases")


def add_key_routes(
    router: APIRouter,
    authorized: Callable[[str | None], Runtime],
    json_response: Callable[..., Response],
) -> None:
    @router.post("/keys")
    async def create_key(
        body: Annotated[NewKey, Body()], authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        runtime = authorized(authorization)
        known_aliases(runtime, body.aliases)
        draft = KeyRecord(**body.model_dump(), sha256="-")
        try:
            record, secret = await runtime.keys.create(draft)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="id", status=409) from None
        # The secret is shown once, here; only its SHA-256 is stored.
        return json_response({"key": secret, **record.public()}, 201)

    @router.get("/keys")
    async def list_keys(authorization: Annotated[str | None, Header()] = None) -> Response:
        runtime = authorized(authorization)
        return json_response({"data": [r.public() for r in await runtime.keys.all()]})

    @router.get("/keys/{key_id}")
    async def show_key(
        key_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        record = await authorized(authorization).keys.get(key_id)
        if record is None:
            raise UnknownRoute(f"No key with id '{key_id}'.")
        return json_response(record.public())

    @router.patch("/keys/{key_id}")
    async def update_key(
        key_id: str,
        body: Annotated[KeyChanges, Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        runtime = authorized(authorization)
        known_aliases(runtime, body.aliases)
        record = await managed(runtime, key_id, "update", body.model_dump(exclude_unset=True))
        return json_response(record.public())

    @router.post("/keys/{key_id}/rotate")
    async def rotate_key(
        key_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        runtime = authorized(authorization)
        try:
            record, secret = await runtime.keys.rotate(key_id)
        except KeyError:
            raise UnknownRoute(f"No key with id '{key_id}'.") from None
        except PermissionError as exc:
            raise InvalidRequest(str(exc), status=409) from None
        return json_response({"key": secret, **record.public()})

    @router.post("/keys/{key_id}/revoke")
    async def revoke_key(
        key_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        runtime = authorized(authorization)
        record = await managed(runtime, key_id, "revoke", {})
        return json_response(record.public())

    async def managed(
        runtime: Runtime, key_id: str, action: str, changes: dict[str, Any]
    ) -> KeyRecord:
        try:
            if action == "revoke":
                return await runtime.keys.revoke(key_id)
            return await runtime.keys.update(key_id, changes)
        except KeyError:
            raise UnknownRoute(f"No key with id '{key_id}'.") from None
        except PermissionError as exc:
            raise InvalidRequest(str(exc), status=409) from None
