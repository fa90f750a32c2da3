"""Exact-cache keys: stable under field order, sensitive to every field that can change the
answer (unknown ones included), blind to transport-only fields, and scoped."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from cache.keys import TRANSPORT_FIELDS, Scope, fingerprint, purge_pattern, redis_key

SCOPE = Scope("team-a", "fast", "v1")
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=5), st.none())
bodies = st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=6)


@given(bodies)
def test_order_does_not_matter(body) -> None:
    reordered = dict(reversed(list(body.items())))
    assert fingerprint(SCOPE, "chat", body) == fingerprint(SCOPE, "chat", reordered)


@given(bodies, st.text(min_size=1, max_size=8), scalars, scalars)
def test_every_answer_field_is_in_the_key(body, field, a, b) -> None:
    if field in TRANSPORT_FIELDS:
        return
    one = fingerprint(SCOPE, "chat", body | {field: a})
    two = fingerprint(SCOPE, "chat", body | {field: b})
    assert (one == two) == (orjson.dumps(a) == orjson.dumps(b))


@given(bodies, st.sampled_from(sorted(TRANSPORT_FIELDS)), scalars)
def test_transport_fields_are_not(body, field, value) -> None:
    base = {k: v for k, v in body.items() if k not in TRANSPORT_FIELDS}
    assert fingerprint(SCOPE, "chat", base) == fingerprint(SCOPE, "chat", base | {field: value})


def test_scope_separates_tenants_aliases_versions_namespaces() -> None:
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    scopes = [
        SCOPE,
        Scope("team-b", "fast", "v1"),
        Scope("team-a", "smart", "v1"),
        Scope("team-a", "fast", "v2"),
        Scope("team-a", "fast", "v1", "ns2"),
    ]
    assert len({fingerprint(s, "chat", body) for s in scopes}) == len(scopes)
    assert fingerprint(SCOPE, "chat", body) != fingerprint(SCOPE, "embeddings", body)


def test_redis_names_keep_scope_out_of_globs() -> None:
    key = redis_key(Scope("a:*b", "x?", "v"), "d")
    assert "*" not in key and "?" not in key and key.count(":") == 5
    assert purge_pattern(tenant="a:*b") == "tg:xc:a__b:*:*:*"
