"""The systems a drill talks to, over HTTP only: the gateway's admin API and the sim's control API.

The drill is a client like an operator's script. It learns the alias's targets, their models and
their breakers from ``GET /admin/targets``, ejects and restores targets through the admin API, and
switches faults on and off through the sim's ``/_sim/faults``. It never imports the gateway's
stages, targets or pipeline: what it reports is what an outside observer can see.

Figures that depend on configuration (timeouts, the retry budget, half-open probes) are read from
the admin API when it reports them (``targets[].timeouts``, ``resilience``); otherwise the demo
configuration's values are assumed and every report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.sim.control import SimControl, SimControlError, http_request


class DrillError(RuntimeError):
    """The drill cannot go on: an endpoint is unreachable or answered something unexpected."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """A target's timeouts as the gateway applies them (``reported``: read, not assumed)."""

    first_token_s: float
    total_s: float
    reported: bool


# routing_rules/default.yaml (what `make run` serves): used when the admin API does not say.
ASSUMED_TIMEOUTS = Timeouts(first_token_s=2.0, total_s=10.0, reported=False)


@dataclass(frozen=True, slots=True)
class Budget:
    """The resilience policy a drill checks attempts against (``reported``: read, not assumed)."""

    max_attempts: int
    retry_ratio: float  # retries may add this share to upstream calls
    retry_min_per_s: float  # plus this floor per second
    half_open_probes: int
    reported: bool

    @property
    def retry_capacity(self) -> float:
        """Tokens the budget may hold at once (a calm spell banks at most this much)."""
        return max(10.0, 10.0 * self.retry_min_per_s)


ASSUMED_BUDGET = Budget(4, 0.2, 5.0, 1, reported=False)


@dataclass(frozen=True, slots=True)
class TargetInfo:
    name: str
    model: str
    timeouts: Timeouts


@dataclass(frozen=True, slots=True)
class Topology:
    """The alias under drill: its targets in order (the first is the primary)."""

    alias: str
    targets: tuple[TargetInfo, ...]
    budget: Budget
    config_version: str | None
    complete: bool  # every target of the alias is known (False: discovered without admin API)

    @property
    def primary(self) -> TargetInfo:
        return self.targets[0]

    @property
    def secondary(self) -> TargetInfo | None:
        return self.targets[1] if len(self.targets) > 1 else None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(t.model for t in self.targets))

    @property
    def deadline_total_s(self) -> float:
        """The largest total timeout of the alias's targets: no answer should take longer."""
        return max(t.timeouts.total_s for t in self.targets)

    def assumptions(self) -> list[str]:
        out: list[str] = []
        if not all(t.timeouts.reported for t in self.targets):
            a = ASSUMED_TIMEOUTS
            out.append(
                "the admin API does not report timeouts: assumed first_token_s "
                f"{a.first_token_s:g}, total_s {a.total_s:g} (the demo configuration's)"
            )
        if not self.budget.reported:
            b = self.budget
            out.append(
                "the admin API does not report the resilience policy: assumed max_attempts "
                f"{b.max_attempts}, retry budget {b.retry_ratio:g} + {b.retry_min_per_s:g}/s, "
                f"{b.half_open_probes} half-open probe(s)"
            )
        if not self.complete:
            out.append("no admin key: targets discovered from x-tiergate-* headers")
        return out


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One target's breaker as ``GET /admin/targets`` shows it (times: epoch seconds)."""

    state: str  # closed | open | half_open
    reason: str | None
    opened_at: float | None
    open_until: float | None
    transitions: int


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_timeouts(entry: Mapping[str, Any]) -> Timeouts:
    raw = _mapping(entry.get("timeouts"))
    first, total = _num(raw.get("first_token_s")), _num(raw.get("total_s"))
    if first is None or total is None:
        return ASSUMED_TIMEOUTS
    return Timeouts(first_token_s=first, total_s=total, reported=True)


def parse_budget(body: Mapping[str, Any]) -> Budget:
    raw = _mapping(body.get("resilience"))
    breaker = _mapping(raw.get("breaker"))
    attempts, ratio = _num(raw.get("max_attempts")), _num(raw.get("retry_budget_ratio"))
    floor = _num(raw.get("retry_budget_min_per_s"))
    probes = _num(breaker.get("half_open_probes"))
    if attempts is None or ratio is None or floor is None:
        return ASSUMED_BUDGET
    return Budget(
        max_attempts=int(attempts),
        retry_ratio=ratio,
        retry_min_per_s=floor,
        half_open_probes=int(probes) if probes is not None else 1,
        reported=True,
    )


def topology_from_admin(body: Mapping[str, Any], alias: str) -> Topology:
    """The alias's targets from a ``GET /admin/targets`` body. Raises ``DrillError``."""
    aliases = _mapping(body.get("aliases"))
    names = aliases.get(alias)
    if not isinstance(names, list) or not names:
        raise DrillError(f"alias '{alias}' is not in GET /admin/targets (aliases: {list(aliases)})")
    raw_targets = body.get("targets")
    entries = {
        str(t.get("name")): t for t in (raw_targets if isinstance(raw_targets, list) else [])
    }
    targets: list[TargetInfo] = []
    for name in names:
        entry = entries.get(str(name))
        if entry is None or not isinstance(entry.get("model"), str):
            raise DrillError(f"target '{name}' of alias '{alias}' has no model in the admin API")
        targets.append(TargetInfo(str(name), entry["model"], parse_timeouts(entry)))
    version = body.get("config_version")
    return Topology(
        alias=alias,
        targets=tuple(targets),
        budget=parse_budget(body),
        config_version=version if isinstance(version, str) else None,
        complete=True,
    )


def breakers_from_admin(body: Mapping[str, Any]) -> dict[str, BreakerView]:
    out: dict[str, BreakerView] = {}
    raw_targets = body.get("targets")
    for entry in raw_targets if isinstance(raw_targets, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        reason = entry.get("reason")
        transitions = _num(entry.get("transitions"))
        out[entry["name"]] = BreakerView(
            state=str(entry.get("state", "closed")),
            reason=reason if isinstance(reason, str) else None,
            opened_at=_num(entry.get("opened_at")),
            open_until=_num(entry.get("open_until")),
            transitions=int(transitions) if transitions is not None else 0,
        )
    return out


async def _json_call(
    base_url: str, method: str, path: str, headers: dict[str, str], payload: object = None
) -> Any:
    body = b"" if payload is None else orjson.dumps(payload)
    try:
        response = await http_request(base_url, method, path, body, headers)
    except OSError as exc:
        raise DrillError(f"{method} {base_url}{path}: {exc}") from None
    if response.status >= 400:
        text = response.body[:300].decode(errors="replace")
        raise DrillError(f"{method} {base_url}{path}: HTTP {response.status} {text}")
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise DrillError(f"{method} {base_url}{path}: the answer is not JSON") from None


class AdminApi:
    """The gateway's admin API (``Authorization: Bearer <admin key>``)."""

    def __init__(self, root: str, key: str) -> None:
        self._root = root.rstrip("/")
        self._headers = {"authorization": f"Bearer {key}"}

    async def targets(self) -> Mapping[str, Any]:
        body = await _json_call(self._root, "GET", "/admin/targets", self._headers)
        if not isinstance(body, dict):
            raise DrillError("GET /admin/targets: expected a JSON object")
        return body

    async def breakers(self) -> dict[str, BreakerView]:
        return breakers_from_admin(await self.targets())

    async def eject(self, name: str, for_s: float, reason: str) -> None:
        path = f"/admin/targets/{name}/eject"
        await _json_call(
            self._root, "POST", path, self._headers, {"for_s": for_s, "reason": reason}
        )

    async def restore(self, name: str) -> None:
        await _json_call(self._root, "POST", f"/admin/targets/{name}/restore", self._headers)


class SimApi:
    """The simulated provider's runtime faults and counters."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._control = SimControl(self.base_url)

    async def fault(self, model: str, kind: str, **params: float) -> int:
        """Add a runtime fault rule for ``model``; its id (to remove exactly this rule)."""
        rule = {"model": model, "fault": kind, "rate": 1.0, **params}
        answer = await _json_call(self.base_url, "POST", "/_sim/faults", {}, rule)
        rule_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(rule_id, int):
            raise DrillError(f"sim {self.base_url}: fault rule without an id: {answer}")
        return rule_id

    async def remove(self, rule_ids: Iterable[int]) -> None:
        try:
            for rule_id in rule_ids:
                await self._control.clear_faults(rule_id=rule_id)
        except (OSError, SimControlError) as exc:
            raise DrillError(f"sim {self.base_url}: cannot remove faults: {exc}") from None

    async def clear(self, models: Iterable[str]) -> None:
        try:
            for model in models:
                await self._control.clear_faults(model=model)
        except (OSError, SimControlError) as exc:
            raise DrillError(f"sim {self.base_url}: cannot clear faults: {exc}") from None

    async def calls(self) -> dict[str, int]:
        """Upstream requests the sim has seen, per model (cumulative)."""
        try:
            stats = await self._control.stats()
        except (OSError, SimControlError) as exc:
            raise DrillError(f"sim {self.base_url}: cannot read stats: {exc}") from None
        by_model = _mapping(stats.get("by_model"))
        return {str(k): int(v) for k, v in by_model.items() if isinstance(v, int)}
