"""The batch state machine: allowed transitions, stamps, cancel, expiry and how a batch ends."""

from __future__ import annotations

import random

import orjson
import pytest

from gateway.errors import (
    AllTargetsFailed,
    InvalidRequest,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    StateConflict,
    UnknownModel,
)
from gateway.jobs.outputs import output_line, usage_of
from gateway.jobs.records import BatchRecord, Counts
from gateway.jobs.runner import MAX_TRIES, retry_delay_s
from gateway.jobs.states import ALLOWED, IllegalTransition, advance, cancel, expired, finish

T0 = 1_000_000


def batch(status: str = "validating") -> BatchRecord:
    return BatchRecord.model_validate(
        {
            "id": "batch_1",
            "owner": "key:k",
            "key_id": "k",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-1",
            "status": status,
            "created_at": T0,
            "expires_at": T0 + 86400,
        }
    )


def test_happy_path_stamps_every_step() -> None:
    b = advance(batch(), "in_progress", T0 + 1, request_counts=Counts(total=3))
    done = finish(b, T0 + 9, 0, Counts(total=3, completed=2, failed=1), "file-o", "file-e")
    assert done.status == "completed"
    assert (done.in_progress_at, done.finalizing_at, done.completed_at) == (T0 + 1, T0 + 9, T0 + 9)
    assert done.terminal
    public = done.public()
    assert public["object"] == "batch"
    assert public["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert public["output_file_id"] == "file-o"
    assert public["errors"] is None
    assert "owner" not in public and "key_id" not in public


@pytest.mark.parametrize("terminal", ["completed", "failed", "expired", "cancelled"])
def test_terminal_states_never_move(terminal: str) -> None:
    assert terminal not in ALLOWED
    for to in ("in_progress", "finalizing", "completed", "cancelling"):
        with pytest.raises(IllegalTransition):
            advance(batch(terminal), to, T0)  # type: ignore[arg-type]


def test_no_skipping_ahead() -> None:
    with pytest.raises(IllegalTransition):
        advance(batch(), "completed", T0)
    with pytest.raises(IllegalTransition):
        advance(batch("in_progress"), "failed", T0)


def test_failed_validation_keeps_errors() -> None:
    errors = [{"code": "mismatched_endpoint", "line": 2, "message": "m", "param": "url"}]
    b = advance(batch(), "failed", T0 + 1, errors=errors)
    assert b.failed_at == T0 + 1
    assert b.public()["errors"] == {"object": "list", "data": errors}


def test_cancel_is_idempotent_and_ends_cancelled() -> None:
    b = cancel(batch("in_progress"), T0 + 5)
    assert (b.status, b.cancelling_at) == ("cancelling", T0 + 5)
    assert cancel(b, T0 + 6) is b
    end = finish(b, T0 + 7, 4, Counts(total=5, completed=1), "file-o", None)
    assert (end.status, end.cancelled_at) == ("cancelled", T0 + 7)
    assert cancel(end, T0 + 8) is end


@pytest.mark.parametrize("status", ["completed", "failed", "expired", "finalizing"])
def test_cancel_after_the_end_is_a_conflict(status: str) -> None:
    with pytest.raises(StateConflict) as caught:
        cancel(batch(status), T0)
    assert caught.value.status == 409


def test_expiry_only_with_work_left() -> None:
    b = advance(batch(), "in_progress", T0 + 1)
    late = T0 + 86400
    assert not expired(b, late - 1)
    assert expired(b, late)
    assert finish(b, late, 2, Counts(total=2, failed=2), None, "file-e").status == "expired"
    # Every line ran before the window closed: completed, even if finalizing comes late.
    assert finish(b, late + 5, 0, Counts(total=2, completed=2), "file-o", None).status == (
        "completed"
    )


def test_retry_policy() -> None:
    rng = random.Random(7)
    capacity = AllTargetsFailed("fast", [], status=429, retry_after_s=3.0)
    assert (retry_delay_s(capacity, 1, rng) or 0) >= 3.0
    assert retry_delay_s(RateLimited("slow down", retry_after_s=0.5), 2, rng) is not None
    assert retry_delay_s(ProviderUnavailable("down"), 1, rng) is not None
    assert retry_delay_s(ProviderUnavailable("down"), MAX_TRIES, rng) is None
    for final in (InvalidRequest("bad"), UnknownModel("nope"), QuotaExhausted("spent")):
        assert retry_delay_s(final, 1, rng) is None


def test_usage_sums_chat_and_embeddings_lines() -> None:
    chat = orjson.dumps(
        {
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            }
        }
    )
    embed = orjson.dumps({"usage": {"prompt_tokens": 7, "total_tokens": 7}})
    lines = [output_line("a", "r1", chat), output_line("b", "r2", embed), b'{"custom_id": "c"}']
    assert usage_of(lines) == {
        "input_tokens": 17,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 22,
    }
