"""Exact-cache keys: the scope parts keep answers apart; an empty route keeps the old keys."""

from __future__ import annotations

from cache.keys import Scope, fingerprint

BODY = {"model": "fast", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}


def test_a_pinned_route_changes_the_key_and_none_keeps_it() -> None:
    plain = fingerprint(Scope("t", "fast", "v1"), "chat", BODY)
    assert fingerprint(Scope("t", "fast", "v1", "default", ""), "chat", BODY) == plain
    pinned = fingerprint(Scope("t", "fast", "v1", "default", "tier=big"), "chat", BODY)
    assert pinned != plain


def test_transport_fields_do_not_change_the_key() -> None:
    scope = Scope("t", "fast", "v1")
    streamed = {**BODY, "stream": True, "user": "u1"}
    assert fingerprint(scope, "chat", streamed) == fingerprint(scope, "chat", BODY)
