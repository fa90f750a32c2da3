"""The ``governance.leases`` rules: how a replica carves budgets and rate windows into leases.

Policy (see ``gateway/governance/leases.py``): on by default. ``validity_s`` is how long a
replica may admit calls into one lease (and so how long capacity may sit unused in another
replica's lease); ``ttl_s`` is the lease's expiry in the state store, renewed while its calls are
in flight: a replica that dies gives its budget leases back within ``ttl_s``. The TTL must cover
at least two validity periods, so that a lease in use never expires under its replica.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Leases(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # A window lease's entry is scored at grant + validity_s: at most 5 s (see reserve.lua).
    validity_s: Annotated[float, Field(ge=0.05, le=5)] = 1.0
    ttl_s: Annotated[float, Field(ge=1, le=600)] = 10.0

    @model_validator(mode="after")
    def _ttl_covers_validity(self) -> Self:
        if self.ttl_s < 2 * self.validity_s:
            raise ValueError("ttl_s must be at least twice validity_s")
        return self
