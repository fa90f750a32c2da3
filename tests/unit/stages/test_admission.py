from __future__ import annotations

import pytest

from gateway.calls import Call, Reply
from gateway.errors import InvalidRequest, UnknownModel
from gateway.rules import Alias
from gateway.stages.admission import Admission
from gateway.stages.router import AliasRouter

ALIASES = {"fast": Alias(targets=["a", "b"]), "embed": Alias(kind="embeddings", targets=["e"])}


@pytest.mark.asyncio
async def test_known_alias_passes_and_router_resolves_targets(make_call, make_reply) -> None:
    seen: list[Call] = []

    async def next_(call: Call) -> Reply:
        seen.append(call)
        return make_reply(b"{}")

    async def route(call: Call) -> Reply:
        return await AliasRouter(ALIASES)(call, next_)

    await Admission(ALIASES)(make_call("fast"), route)
    assert seen[0].route is not None
    assert seen[0].route.targets == ("a", "b")


@pytest.mark.asyncio
@pytest.mark.parametrize(("alias", "allowed"), [("nope", None), ("fast", frozenset({"embed"}))])
async def test_unknown_or_forbidden_alias_is_404(make_call, alias, allowed) -> None:
    async def next_(call: Call) -> Reply:
        raise AssertionError("must not be reached")

    with pytest.raises(UnknownModel) as info:
        await Admission(ALIASES)(make_call(alias, aliases=allowed), next_)
    assert info.value.status == 404


@pytest.mark.asyncio
async def test_embeddings_alias_on_chat_route_is_400(make_call) -> None:
    async def next_(call: Call) -> Reply:
        raise AssertionError("must not be reached")

    with pytest.raises(InvalidRequest):
        await Admission(ALIASES)(make_call("embed"), next_)
