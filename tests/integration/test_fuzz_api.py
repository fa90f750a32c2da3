"""Schemathesis against a running gateway, from its own /openapi.json.

Bounded and reproducible: a fixed number of examples per operation (``FUZZ_EXAMPLES``, 40 by
default), derandomised (the same inputs every run), no deadline. Every answer must be below 500
(a 502/503/504 is allowed only as a provider-side outcome, which these requests cannot cause:
every alias here is served by a healthy sim target) and every non-2xx answer must be an
OpenAI-shaped error. Both positive
(schema-valid) and negative (schema-violating) bodies are generated.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.integration.conftest import Gateway

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::ResourceWarning")]
# 40 in the suite; more by hand, e.g. FUZZ_EXAMPLES=150 (the run that once ejected 'claude').
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


def api_schema(gateway: Gateway) -> Any:
    doc = httpx.get(f"{gateway.root}/openapi.json", timeout=10).json()
    # The sim-backed aliases of the test rules, so valid bodies reach the pipeline: "claude" is
    # the litellm-translated one (Anthropic format upstream; bodies litellm cannot translate are
    # 400s that never count against its target: tests/integration/test_bad_bodies_never_eject.py).
    doc["components"]["schemas"]["ChatRequest"]["properties"]["model"] = {
        "enum": ["fast", "smart", "claude", "nothing-here"]
    }
    doc["components"]["schemas"]["EmbeddingsRequest"]["properties"]["model"] = {
        "enum": ["embed", "fast"]
    }
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=gateway.root)
    return schema


def test_openapi_describes_the_public_surface(gateway: Gateway) -> None:
    doc = httpx.get(f"{gateway.root}/openapi.json", timeout=10).json()
    assert set(doc["paths"]) >= {"/v1/chat/completions", "/v1/embeddings", "/v1/models"}
    assert doc["openapi"].startswith("3.")


def check(case: schemathesis.Case, gateway: Gateway, seen: list[int]) -> None:
    response = case.call(headers={"authorization": f"Bearer {gateway.key}"}, timeout=30)
    seen.append(response.status_code)
    assert response.status_code < 500 or case.path == "/readyz", (
        case.method,
        case.path,
        case.body,
        response.status_code,
        response.text[:500],
    )
    if response.status_code >= 400:
        error = json.loads(response.text)["error"]
        assert {"message", "type", "param", "code"} <= set(error)
        assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_below_500_and_errors_are_openai_shaped(
    gateway: Gateway, mode: GenerationMode
) -> None:
    """(schemathesis' pytest plugin does not run under pytest 9 yet: its strategies are driven
    by hypothesis directly.)"""
    seen: list[int] = []
    operations = [r.ok() for r in api_schema(gateway).get_all_operations()]
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # nothing to violate in a GET without parameters

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            check(case, gateway, seen)

        run()
    print(f"schemathesis {mode.value}: {len(seen)} requests, statuses {sorted(set(seen))}")
    assert seen
