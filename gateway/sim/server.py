"""The simulated provider's HTTP server: routing, the control API, start and stop.

Use ``run_sim`` from the CLI (blocks until SIGINT/SIGTERM) and ``start_sim`` in tests or
in-process demos (returns a ``SimServer`` to ``close()``). All state (stats, runtime faults,
rate-limit buckets) lives on the ``Simulator`` object of one server; nothing is global.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from urllib.parse import parse_qs

import orjson
from pydantic import ValidationError

from gateway.sim.completions import CompletionService, model_names
from gateway.sim.config import RuntimeFaultRule, SimConfig, load_sim_config
from gateway.sim.faults import HEADER_PREFIX, FaultBook
from gateway.sim.openai_format import invalid_from, models_body
from gateway.sim.protocol import Full, Plan, SimConnection
from gateway.sim.provider_errors import internal, invalid_request, not_found
from gateway.sim.stats import SimStats

log = logging.getLogger("tiergate.sim")
Headers = dict[bytes, bytes]
Route = Callable[[bytes, bytes, Headers], Plan]  # (body, query, headers) -> plan
_AUTH_HEADERS = frozenset((b"authorization", b"x-api-key"))
_HEALTH = Full(200, b'{"status":"ok"}')


class Simulator:
    """Routes requests to the completion service and the ``/_sim`` control endpoints."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self.faults = FaultBook()
        self.service = CompletionService(config, self.faults, self.stats)
        names = list(model_names(config))
        models = Full(200, models_body([n for n, _ in names], [o for _, o in names]))
        self._routes: dict[tuple[bytes, bytes], Route] = {}
        for prefix in (b"/v1", b""):
            self._routes[(b"POST", prefix + b"/chat/completions")] = self._drop_query(
                self.service.chat
            )
            self._routes[(b"POST", prefix + b"/messages")] = self._drop_query(self.service.messages)
            self._routes[(b"POST", prefix + b"/embeddings")] = self._drop_query(self.service.embed)
            self._routes[(b"GET", prefix + b"/models")] = lambda _b, _q, _h: models
        for path in (b"/health", b"/healthz", b"/"):
            self._routes[(b"GET", path)] = lambda _b, _q, _h: _HEALTH
        self._routes[(b"GET", b"/_sim/stats")] = self._get_stats
        self._routes[(b"DELETE", b"/_sim/stats")] = self._reset_stats
        self._routes[(b"GET", b"/_sim/faults")] = self._list_faults
        self._routes[(b"POST", b"/_sim/faults")] = self._add_fault
        self._routes[(b"DELETE", b"/_sim/faults")] = self._clear_faults

    @staticmethod
    def _drop_query(endpoint: Callable[[bytes, Headers], Plan]) -> Route:
        return lambda body, _query, headers: endpoint(body, headers)

    def handle(self, method: bytes, url: bytes, body: bytes, headers: Headers) -> Plan:
        """The protocol's handler: one parsed request in, one plan out."""
        path, _, query = url.partition(b"?")
        route = self._routes.get((method, path))
        if not path.startswith(b"/_sim/"):
            self.stats.requests += 1
            self.stats.by_path[path] += 1
        if route is None:
            return self.service.openai.error(not_found(method.decode(), path.decode()))
        try:
            return route(body, query, headers)
        except Exception as exc:  # a sim bug must answer 500, not kill the connection
            log.exception("sim: handler failed")
            return self.service.openai.error(internal(type(exc).__name__))

    # ---------------------------------------------------------------- control API
    def _get_stats(self, _body: bytes, _query: bytes, _headers: Headers) -> Plan:
        return Full(200, orjson.dumps(self.stats.snapshot()))

    def _reset_stats(self, _body: bytes, _query: bytes, _headers: Headers) -> Plan:
        self.stats.reset()
        return Full(200, b'{"reset":true}')

    def _list_faults(self, _body: bytes, _query: bytes, _headers: Headers) -> Plan:
        return Full(200, orjson.dumps({"faults": self.faults.listing()}))

    def _add_fault(self, body: bytes, _query: bytes, _headers: Headers) -> Plan:
        try:
            rule = RuntimeFaultRule.model_validate_json(body)
        except ValidationError as exc:
            return self.service.openai.error(invalid_from(exc))
        return Full(200, orjson.dumps(self.faults.add(rule)))

    def _clear_faults(self, _body: bytes, query: bytes, _headers: Headers) -> Plan:
        params = parse_qs(query.decode(errors="replace"))
        model = params.get("model", [None])[0]
        raw_id = params.get("id", [None])[0]
        try:
            rule_id = int(raw_id) if raw_id is not None else None
        except ValueError:
            return self.service.openai.error(invalid_request("id must be an integer", "id"))
        removed = self.faults.clear(model, rule_id)
        return Full(200, orjson.dumps({"removed": removed}))


class SimServer:
    """A listening sim. ``port`` is the bound port (useful when 0 was asked for)."""

    def __init__(
        self, server: asyncio.Server, simulator: Simulator, connections: set[SimConnection]
    ) -> None:
        self._server = server
        self._connections = connections
        self.simulator = simulator
        self.port: int = server.sockets[0].getsockname()[1]

    @property
    def base_url(self) -> str:
        host = self._server.sockets[0].getsockname()[0]
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening, cut open connections (hung ones too) and wait until closed."""
        self._server.close()
        cancelled = [connection.abort() for connection in list(self._connections)]
        await asyncio.gather(*(t for t in cancelled if t is not None), return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run


async def start_sim(host: str, port: int, config: SimConfig) -> SimServer:
    """Start serving on the running loop and return at once."""
    simulator = Simulator(config)
    connections: set[SimConnection] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SimConnection(simulator.handle, HEADER_PREFIX, _AUTH_HEADERS, connections),
        host,
        port,
        backlog=4096,
        reuse_address=True,
    )
    return SimServer(server, simulator, connections)


async def _serve_until_signalled(host: str, port: int, config: SimConfig) -> None:
    sim = await start_sim(host, port, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    names = ", ".join(name for name, _ in model_names(config)) or "default only"
    print(f"tiergate sim listening on http://{host}:{sim.port} (models: {names})", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.close()


def run_sim(host: str, port: int, config_path: str | None) -> None:
    """Serve forever (uvloop when available); SIGINT/SIGTERM stop it cleanly."""
    config = load_sim_config(config_path)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        asyncio.run(_serve_until_signalled(host, port, config))
        return
    uvloop.run(_serve_until_signalled(host, port, config))
