"""JSON and JSON-schema checks for the schema gate (the one module that imports ``jsonschema``).

Use ``Validators`` to validate answers against schemas: a schema configured in the rules is
compiled once when the gates are built; a schema that arrives with a request is compiled on first
sight and kept in a small per-gate LRU (requests of one feature send the same schema every time).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

CACHED_SCHEMAS = 64
FENCE = "```"


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ValueError when ``schema`` is not a valid JSON schema (at rules load)."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from None


def compile_schema(schema: Mapping[str, Any]) -> Validator:
    """A ready validator for ``schema`` (raises ValueError for an invalid schema)."""
    check_schema(schema)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def strip_fences(text: str) -> str:
    """``text`` without one surrounding Markdown code fence (```json ... ```), if it has one."""
    stripped = text.strip()
    if stripped.startswith(FENCE) and stripped.endswith(FENCE) and len(stripped) > 6:
        body = stripped[3:-3]
        return body.split("\n", 1)[1] if "\n" in body else body
    return stripped


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) when ``text`` is one JSON value, else (None, a short reason)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid-json: {exc.msg} at {exc.pos}"


def first_error(validator: Validator, value: Any) -> str | None:
    """The most relevant schema violation as ``$.path: message``, or None when valid."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"{error.json_path}: {message}"


class Validators:
    """Compiled validators for request schemas, least recently used dropped first."""

    def __init__(self, size: int = CACHED_SCHEMAS) -> None:
        self._size = size
        self._cache: OrderedDict[str, Validator | str] = OrderedDict()

    def get(self, schema: Mapping[str, Any]) -> Validator | str:
        """The validator for ``schema``, or the reason it is not a valid schema."""
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        try:
            made: Validator | str = compile_schema(schema)
        except ValueError as exc:
            made = str(exc)
        self._cache[key] = made
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return made
