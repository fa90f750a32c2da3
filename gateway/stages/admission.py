"""Admission: may this key use this alias at all? (Limits and idempotency join here later.)

An unknown alias and an alias the key is not cleared for both get 404 ``model_not_found``, as
OpenAI does, so a key does not learn which aliases exist; both before any state or upstream is
touched.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.calls import Call, CallKind, Reply
from gateway.errors import InvalidRequest, UnknownModel
from gateway.pipeline import Next
from gateway.rules import Alias


class Admission:
    name = "admission"

    def __init__(self, aliases: Mapping[str, Alias]) -> None:
        self._kinds = {name: alias.kind for name, alias in aliases.items()}

    async def __call__(self, call: Call, next_: Next) -> Reply:
        kind = self._kinds.get(call.alias)
        allowed = call.principal.aliases
        if kind is None or (allowed is not None and call.alias not in allowed):
            raise UnknownModel(
                f"The model '{call.alias}' does not exist or you do not have access to it.",
                param="model",
            )
        if kind != call.kind.value:
            want = "/v1/embeddings" if kind == CallKind.EMBEDDINGS.value else "/v1/chat/completions"
            raise InvalidRequest(f"Model '{call.alias}' is served on {want}.", param="model")
        return await next_(call)
