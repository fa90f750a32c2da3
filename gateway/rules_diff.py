"""What would change between two versions of the routing rules, as dotted paths.

Used by ``tiergate check-config NEW --diff OLD``, where OLD is another file or a running gateway
(its admin API's ``GET /admin/rules``). Both sides are validated ``Rules`` dumped with defaults
filled in, so a default written out explicitly is no change, and lists of keys are matched by id.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.rules import Rules, RulesInvalid, load_rules


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any  # None with added, the old value otherwise
    new: Any
    kind: str  # added | removed | changed

    def line(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {json.dumps(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {json.dumps(self.old)}"
        return f"~ {self.path}: {json.dumps(self.old)} -> {json.dumps(self.new)}"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf value; keys (a list of objects with ids) are indexed by id."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        if not value and prefix:
            return {prefix: {}}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "id" in v for v in value):
        return flatten({str(v["id"]): v for v in value}, prefix)
    return {prefix: value}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Changes from ``old`` to ``new`` (two rules dumps), sorted by path; ``version`` ignored."""
    a, b = flatten(old), flatten(new)
    changes: list[Change] = []
    for path in sorted(a.keys() | b.keys()):
        if path == "version":
            continue
        if path not in a:
            changes.append(Change(path, None, b[path], "added"))
        elif path not in b:
            changes.append(Change(path, a[path], None, "removed"))
        elif a[path] != b[path]:
            changes.append(Change(path, a[path], b[path], "changed"))
    return changes


def dump(rules: Rules) -> dict[str, Any]:
    data: dict[str, Any] = rules.model_dump(mode="json")
    return data


class RunningRulesUnavailable(Exception):
    """The running gateway's rules could not be read (no admin key, refused, unreachable)."""


def running_rules(base_url: str, admin_key: str | None, timeout_s: float = 10.0) -> dict[str, Any]:
    """The rules a running gateway serves, from ``GET {base_url}/admin/rules``."""
    if not admin_key:
        raise RunningRulesUnavailable("comparing with a running gateway needs --admin-key")
    root = base_url.rstrip("/").removesuffix("/v1")
    request = urllib.request.Request(
        root + "/admin/rules", headers={"Authorization": f"Bearer {admin_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RunningRulesUnavailable(f"{root}/admin/rules: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RunningRulesUnavailable(f"{root}/admin/rules: {exc}") from None
    rules: dict[str, Any] = body["rules"]
    return rules


def compare(new: Rules, against: str, admin_key: str | None, echo: Callable[[str], Any]) -> int:
    """Print what loading ``new`` would change relative to ``against`` (a file, or the base URL
    of a running gateway). Exit code: 0 (printed, with or without changes), 2 (``against``
    could not be read or is invalid)."""
    if against.startswith(("http://", "https://")):
        try:
            old = running_rules(against, admin_key)
        except RunningRulesUnavailable as exc:
            echo(f"cannot read the running rules: {exc}")
            return 2
        label = f"running gateway {against}"
    else:
        try:
            old = dump(load_rules(against))
        except RulesInvalid as exc:
            echo(f"cannot compare with {against}: {exc}")
            return 2
        label = against
    changes = diff(old, dump(new))
    if not changes:
        echo(f"no changes against {label}")
        return 0
    echo(f"{len(changes)} change(s) against {label}:")
    for change in changes:
        echo("  " + change.line())
    return 0
