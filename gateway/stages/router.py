"""Router slot: resolve the alias to its ordered targets.

This is the plain alias router; the complexity router (tiers, scores) replaces it in the same slot.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.calls import Call, Reply, Route
from gateway.pipeline import Next
from gateway.rules import Alias


def route_of(name: str, alias: Alias) -> Route:
    by_priority: dict[int, list[tuple[str, int]]] = {}
    for entry in alias.entries():
        assert entry.priority is not None  # entries() fills it in
        by_priority.setdefault(entry.priority, []).append((entry.target, entry.weight))
    groups = tuple(tuple(by_priority[p]) for p in sorted(by_priority))
    flat = tuple(t for group in groups for t, _ in group)
    # A plain ordered chain needs no per-call ordering: leave groups empty (the fast path).
    return Route(name, flat, groups=() if all(len(g) == 1 for g in groups) else groups)


class AliasRouter:
    name = "router"

    def __init__(self, aliases: Mapping[str, Alias]) -> None:
        # Routes are built once here, not per call.
        self._routes = {name: route_of(name, alias) for name, alias in aliases.items()}

    async def __call__(self, call: Call, next_: Next) -> Reply:
        return await next_(call.routed(self._routes[call.alias]))
