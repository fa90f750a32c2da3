"""The OpenAI Files and Batches API on the gateway (FastAPI; off the hot path).

``POST /v1/files`` (multipart, ``purpose=batch``), ``GET /v1/files``, ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``, ``POST /v1/batches``,
``GET /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. The objects
are OpenAI's, so ``client.files.*`` and ``client.batches.*`` of the official SDK work unchanged.

Access: a file or batch belongs to the virtual key that created it. Only that key, or the admin
key, sees it; to any other key it does not exist (404, the same answer as for a wrong id).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import HeaderParser
from email.policy import HTTP
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import Response

from gateway.errors import (
    BodyTooLarge,
    Forbidden,
    GatewayError,
    InvalidRequest,
    NoSuchObject,
    StateConflict,
)
from gateway.governance.keystore import hash_key
from gateway.http.edge import RuntimeHolder
from gateway.jobs import keyspace as ks
from gateway.jobs.lines import ENDPOINTS, parse_batch_file
from gateway.jobs.records import BatchRecord, CreateBatch, FileRecord
from gateway.jobs.states import WINDOW_S, cancel
from gateway.jobs.store import JobStore
from gateway.settings import Settings
from gateway.state import StateStore

JsonResponse = Callable[..., Response]
Auth = Annotated[str | None, Header()]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a virtual key (owns what it creates) or the admin key (sees everything)."""

    owner: str
    key_id: str | None  # None: the admin key

    def sees(self, owner: str) -> bool:
        return self.key_id is None or owner == self.owner


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def multipart_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a ``multipart/form-data`` body: name -> (filename, bytes). The body is cut
    at the boundary by hand (the standard MIME parser is an order of magnitude slower on
    large files) and each part's few header lines are read with the standard library's parser."""
    head = HeaderParser(policy=HTTP).parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = (
        head.get_param("boundary") if head.get_content_type() == "multipart/form-data" else None
    )
    if not isinstance(boundary, str) or not boundary:
        raise InvalidRequest("Upload the file as multipart/form-data (fields 'file', 'purpose').")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        raw_headers, sep, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise InvalidRequest("The multipart body could not be read.")
        headers = HeaderParser(policy=HTTP).parsestr(raw_headers.decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (headers.get_filename(), content.removesuffix(b"\r\n"))
    return fields


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The upload of {declared} bytes exceeds the {limit} byte limit.")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The upload exceeds the {limit} byte limit.")
        parts.append(chunk)
    return b"".join(parts)


def page(data: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


class Access:
    """Resolves the caller and finds the objects it may see (when to use: every route here)."""

    def __init__(self, holder: RuntimeHolder, state: Callable[[], StateStore | None]) -> None:
        self._holder = holder
        self._state = state

    async def caller(self, authorization: str | None) -> tuple[Caller, JobStore]:
        runtime, store = self._holder.current, self._state()
        if runtime is None or store is None:
            raise GatewayError("The gateway is starting; try again.", status=503)
        admin = runtime.rules.admin.key_sha256
        scheme, _, secret = (authorization or "").partition(" ")
        if (
            admin is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(hash_key(secret.strip()), admin)
        ):
            return Caller(owner=ks.EVERYONE, key_id=None), JobStore(store.redis)
        principal = await runtime.keys.authenticate(authorization)
        who = Caller(owner=ks.owner_of(principal.key_id), key_id=principal.key_id)
        return who, JobStore(store.redis)

    async def creator(self, authorization: str | None) -> tuple[Caller, JobStore]:
        who, store = await self.caller(authorization)
        if who.key_id is None:
            raise Forbidden(
                "The admin key cannot own files or batches; use a virtual key.",
                code="admin_key_not_allowed",
            )
        return who, store

    @staticmethod
    async def file(who: Caller, store: JobStore, file_id: str) -> FileRecord:
        record = await store.get_file(file_id)
        if record is None or not who.sees(record.owner):
            raise NoSuchObject(f"No such File object: {file_id}", param="id")
        return record

    @staticmethod
    async def batch(who: Caller, store: JobStore, batch_id: str) -> BatchRecord:
        record = await store.get_batch(batch_id)
        if record is None or not who.sees(record.owner):
            raise NoSuchObject(f"No such Batch object: {batch_id}", param="id")
        return record


def jobs_router(
    holder: RuntimeHolder,
    state: Callable[[], StateStore | None],
    settings: Settings,
    json_response: JsonResponse,
) -> APIRouter:
    """The Files and Batches routes (registered once by ``create_app``)."""
    router = APIRouter()
    access = Access(holder, state)
    add_file_routes(router, access, settings, json_response)
    add_batch_routes(router, access, json_response)
    return router


async def stored_upload(
    request: Request, who: Caller, store: JobStore, settings: Settings
) -> FileRecord:
    """Read, check and store one ``POST /v1/files`` upload."""
    limit = settings.batch_file_max_bytes
    raw = await read_limited(request, limit + 64 * 1024)  # room for the multipart framing
    loop = asyncio.get_running_loop()  # large bodies are cut and checked off the event loop
    fields = await loop.run_in_executor(
        None, multipart_fields, request.headers.get("content-type", ""), raw
    )
    del raw
    purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace").strip()
    if purpose != "batch":
        raise InvalidRequest(
            f"Only purpose 'batch' is supported here, not '{purpose}'.", param="purpose"
        )
    if "file" not in fields:
        raise InvalidRequest("The 'file' field is missing.", param="file")
    filename, body = fields["file"]
    if len(body) > limit:
        raise BodyTooLarge(f"The file of {len(body)} bytes exceeds the {limit} byte limit.")
    # Refuse a bad file before storing it (seconds for a 50,000-line file).
    await loop.run_in_executor(None, parse_batch_file, body, settings.batch_max_lines)
    record = FileRecord(
        id=new_id("file-"),
        owner=who.owner,
        bytes=len(body),
        created_at=int(time.time()),
        filename=(filename or "upload.jsonl")[:255],
        purpose="batch",
    )
    await store.put_file(record, body)
    return record


def add_file_routes(
    router: APIRouter, access: Access, settings: Settings, json_response: JsonResponse
) -> None:
    @router.post("/v1/files")
    async def upload(request: Request, authorization: Auth = None) -> Response:
        who, store = await access.creator(authorization)
        record = await stored_upload(request, who, store, settings)
        return json_response(record.public())

    @router.get("/v1/files")
    async def list_files(
        authorization: Auth = None,
        after: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
        purpose: Annotated[str | None, Query()] = None,
    ) -> Response:
        who, store = await access.caller(authorization)
        records, more = await store.list_files(who.owner, after, limit)
        data = [r.public() for r in records if purpose is None or r.purpose == purpose]
        return json_response(page(data, more))

    @router.get("/v1/files/{file_id}")
    async def get_file(file_id: str, authorization: Auth = None) -> Response:
        who, store = await access.caller(authorization)
        return json_response((await access.file(who, store, file_id)).public())

    @router.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str, authorization: Auth = None) -> Response:
        who, store = await access.caller(authorization)
        record = await access.file(who, store, file_id)
        body = await store.file_body(record.id)
        if body is None:
            raise NoSuchObject(f"No such File object: {file_id}", param="id")
        return Response(body, media_type="application/octet-stream")

    @router.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str, authorization: Auth = None) -> Response:
        who, store = await access.caller(authorization)
        record = await access.file(who, store, file_id)
        users = [b.id for b in await store.active_batches() if b.input_file_id == record.id]
        if users:
            # A batch reads its input again when it resumes after a restart.
            raise StateConflict(
                f"File {record.id} is the input of batch {users[0]}, which has "
                "not finished; cancel it or wait."
            )
        await store.delete_file(record)
        return json_response({"id": record.id, "object": "file", "deleted": True})


async def new_batch(body: CreateBatch, who: Caller, store: JobStore) -> BatchRecord:
    """Check and store one ``POST /v1/batches``; the scheduler picks it up from there."""
    assert who.key_id is not None
    if body.endpoint not in ENDPOINTS:
        raise InvalidRequest(
            f"Endpoint '{body.endpoint}' is not supported here; use one of {', '.join(ENDPOINTS)}.",
            param="endpoint",
        )
    if body.metadata is not None and len(body.metadata) > 16:
        raise InvalidRequest("At most 16 metadata pairs.", param="metadata")
    source = await Access.file(who, store, body.input_file_id)
    if source.purpose != "batch":
        raise InvalidRequest(
            f"File {source.id} has purpose '{source.purpose}', not 'batch'.",
            param="input_file_id",
        )
    now = int(time.time())
    record = BatchRecord(
        id=new_id("batch_"),
        owner=who.owner,
        key_id=who.key_id,
        endpoint=body.endpoint,
        input_file_id=source.id,
        completion_window=body.completion_window,
        created_at=now,
        expires_at=now + WINDOW_S[body.completion_window],
        metadata=body.metadata,
    )
    await store.put_batch(record)
    return record


def add_batch_routes(router: APIRouter, access: Access, json_response: JsonResponse) -> None:
    @router.post("/v1/batches")
    async def create_batch(
        body: Annotated[CreateBatch, Body()], authorization: Auth = None
    ) -> Response:
        who, store = await access.creator(authorization)
        return json_response((await new_batch(body, who, store)).public())

    @router.get("/v1/batches")
    async def list_batches(
        authorization: Auth = None,
        after: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        who, store = await access.caller(authorization)
        records, more = await store.list_batches(who.owner, after, limit)
        data = [r.public(await store.counts(r)) for r in records]
        return json_response(page(data, more))

    @router.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str, authorization: Auth = None) -> Response:
        who, store = await access.caller(authorization)
        record = await access.batch(who, store, batch_id)
        return json_response(record.public(await store.counts(record)))

    @router.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str, authorization: Auth = None) -> Response:
        who, store = await access.caller(authorization)
        await access.batch(who, store, batch_id)
        now = int(time.time())
        record = await store.update_batch(batch_id, lambda r: cancel(r, now))
        return json_response(record.public(await store.counts(record)))
