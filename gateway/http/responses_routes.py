"""``GET`` and ``DELETE /v1/responses/{id}``: stored responses, visible only to the key that
created them (raw ASGI, beside the surfaces; see ``gateway.surface.responses_store``)."""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

from gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed, UnknownRoute
from gateway.http.edge import Receive, RuntimeHolder, Scope, Send, new_request_id, pick_headers
from gateway.http.errors import JSON, error_body, error_headers
from gateway.surface.responses_objects import input_items
from gateway.surface.responses_store import ResponseStore

PREFIXES = ("/v1/responses/", "/responses/")


class StoredResponses:
    """The ASGI handler for paths under ``/v1/responses/``."""

    def __init__(self, holder: RuntimeHolder, store: ResponseStore) -> None:
        self._holder = holder
        self._store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inc = pick_headers(scope["headers"])
        request_id = inc.request_id or new_request_id()
        try:
            status, body = await self._answer(scope, inc.authorization)
        except GatewayError as err:
            payload = error_body(err)
            headers = error_headers(err, request_id)
            headers.append((b"content-length", str(len(payload)).encode()))
            await send({"type": "http.response.start", "status": err.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        headers = [JSON, (b"x-request-id", request_id.encode())]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, authorization: str | None) -> tuple[int, bytes]:
        runtime = self._holder.current
        store = self._store
        if runtime is None:
            raise GatewayError("The gateway is starting; try again.", status=503)
        principal = await runtime.keys.authenticate(authorization)
        path: str = scope["path"]
        prefix = next(p for p in PREFIXES if path.startswith(p))
        response_id = path[len(prefix) :]
        if response_id.endswith("/input_items") and scope["method"] == "GET":
            return 200, await self._input_items(
                store, principal.key_id, response_id.removesuffix("/input_items"), scope
            )
        if not response_id or "/" in response_id:
            raise UnknownRoute(f"Unknown request URL: {scope['method']} {path}.")
        if scope["method"] == "GET":
            stored = await store.get(principal.key_id, response_id)
            return 200, orjson.dumps(stored.response)
        if scope["method"] == "DELETE":
            await store.delete(principal.key_id, response_id)
            deleted = {"id": response_id, "object": "response.deleted", "deleted": True}
            return 200, orjson.dumps(deleted)
        raise MethodNotAllowed(f"{scope['method']} is not allowed on {path}.")

    async def _input_items(
        self, store: ResponseStore, key_id: str, response_id: str, scope: Scope
    ) -> bytes:
        """The items that went into a stored response (``order`` asc or desc, ``limit``)."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        order = query.get("order", ["desc"])[0]
        try:
            limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
        except ValueError:
            raise InvalidRequest("limit must be an integer.", param="limit") from None
        stored = await store.get(key_id, response_id)
        items = input_items(stored.conversation[:-1])  # the last message is the answer
        if order != "asc":
            items.reverse()
        page = items[:limit]
        return orjson.dumps(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )
