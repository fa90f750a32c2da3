"""The stored records of files and batches, and the OpenAI objects the API shows for them.

Records are pydantic models because they cross an edge (JSON in Redis); they are frozen: a
change is ``model_copy(update=...)`` through ``gateway.jobs.states``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
TERMINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class FileRecord(BaseModel):
    """An uploaded batch input file, or an output/error file a batch wrote."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    owner: str  # keyspace.owner_of(key id)
    bytes: int
    created_at: int
    filename: str
    purpose: Literal["batch", "batch_output"]

    def public(self) -> dict[str, Any]:
        """The OpenAI ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


class Counts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchRecord(BaseModel):
    """A batch as stored. ``request_counts`` is final once the batch is terminal; while it
    runs, the live counts come from the per-line result hashes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    owner: str
    key_id: str  # the lines run as this key
    endpoint: str
    input_file_id: str
    completion_window: str = "24h"
    status: Status = "validating"
    created_at: int
    expires_at: int
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None  # OpenAI BatchError objects (validation)
    request_counts: Counts = Counts()
    metadata: dict[str, str] | None = None
    model: str | None = None  # the model (alias) the first line asks for
    usage: dict[str, Any] | None = None  # OpenAI BatchUsage, summed when the batch ends

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def public(self, counts: Counts | None = None) -> dict[str, Any]:
        """The OpenAI ``batch`` object (``counts``: the live counts of a running batch)."""
        body = self.model_dump(exclude={"owner", "key_id", "errors", "request_counts"})
        body["object"] = "batch"
        body["errors"] = None if not self.errors else {"object": "list", "data": self.errors}
        body["request_counts"] = (counts or self.request_counts).model_dump()
        return body


class CreateBatch(BaseModel):
    """``POST /v1/batches``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_file_id: Annotated[str, Field(min_length=1, max_length=128)]
    endpoint: str
    completion_window: Literal["24h"]
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = None
    output_expires_after: dict[str, Any] | None = None  # accepted; outputs are kept until deleted
