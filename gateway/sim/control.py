"""A small client for a running sim's control API (``/_sim/faults``, ``/_sim/stats``).

Use it from fault drills and tests to switch a simulated provider down and up while traffic
flows. It speaks plain HTTP/1.1 over asyncio streams (one connection per call), so it needs no
HTTP library and works against any sim, in-process or not.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import orjson

from gateway.sim.config import FaultKind


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


class SimControlError(RuntimeError):
    """The sim answered a control call with an error status or an unexpected body."""


def _object(payload: object, required: str) -> dict[str, object]:
    if not isinstance(payload, dict) or required not in payload:
        raise SimControlError(f"expected a JSON object with {required!r}, got {payload!r}")
    return {str(key): value for key, value in payload.items()}


def _field(payload: object, name: str) -> object:
    return _object(payload, name)[name]


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def parse_response(raw: bytes) -> RawResponse:
    """Parse a whole HTTP/1.1 response read until the server closed the connection."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawResponse(status, headers, body)


async def http_request(
    base_url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """One request on a fresh connection (``connection: close``), read to the end."""
    url = urlsplit(base_url)
    host = url.hostname or "127.0.0.1"
    port = url.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"host: {host}:{port}", "connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines += ["content-type: application/json", f"content-length: {len(body)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return parse_response(raw)


class SimControl:
    """Control API of the sim at ``base_url`` (e.g. ``http://127.0.0.1:9100``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def _call(self, method: str, path: str, payload: object = None) -> object:
        body = b"" if payload is None else orjson.dumps(payload)
        response = await http_request(self.base_url, method, path, body)
        if response.status >= 400:
            raise SimControlError(f"{method} {path}: {response.status} {response.body!r}")
        return response.json()

    async def add_fault(
        self,
        fault: FaultKind | str,
        model: str = "*",
        rate: float = 1.0,
        count: int | None = None,
        **params: float,
    ) -> dict[str, object]:
        """Add a runtime rule; params: retry_after_s, ttft_ms, after_chunks."""
        rule: dict[str, object] = {"fault": str(fault), "model": model, "rate": rate, **params}
        if count is not None:
            rule["count"] = count
        return _object(await self._call("POST", "/_sim/faults", rule), "id")

    async def clear_faults(self, model: str | None = None, rule_id: int | None = None) -> int:
        query = {k: v for k, v in (("model", model), ("id", rule_id)) if v is not None}
        path = "/_sim/faults" + (f"?{urlencode(query)}" if query else "")
        removed = _field(await self._call("DELETE", path), "removed")
        if not isinstance(removed, int):
            raise SimControlError(f"removed: expected an integer, got {removed!r}")
        return removed

    async def faults(self) -> list[dict[str, object]]:
        rules = _field(await self._call("GET", "/_sim/faults"), "faults")
        if not isinstance(rules, list):
            raise SimControlError(f"faults: expected a list, got {rules!r}")
        return rules

    async def stats(self) -> dict[str, object]:
        return _object(await self._call("GET", "/_sim/stats"), "requests")

    async def reset_stats(self) -> None:
        await self._call("DELETE", "/_sim/stats")
