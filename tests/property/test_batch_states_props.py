"""The batch state machine under any sequence of events: terminal is final, only allowed moves
happen, each status is stamped with the time it was reached, cancel only conflicts late."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import StateConflict
from gateway.jobs.records import TERMINAL, BatchRecord, Counts
from gateway.jobs.states import ALLOWED, IllegalTransition, advance, cancel, finish

T0 = 1_000_000
STATUSES = [
    "in_progress",
    "failed",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]

events = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from(STATUSES), st.integers(0, 200_000)),
        st.tuples(st.just("cancel"), st.just(""), st.integers(0, 200_000)),
        st.tuples(st.just("finish"), st.just(""), st.integers(0, 200_000)),
    ),
    max_size=12,
)


def fresh() -> BatchRecord:
    return BatchRecord(
        id="batch_p",
        owner="key:k",
        key_id="k",
        endpoint="/v1/chat/completions",
        input_file_id="file-p",
        created_at=T0,
        expires_at=T0 + 86400,
    )


@given(events, st.integers(0, 3))
def test_any_sequence_keeps_the_invariants(steps: list[tuple[str, str, int]], pending: int) -> None:
    record = fresh()
    clock = T0
    for kind, to, dt in steps:
        clock += dt
        before = record
        try:
            if kind == "advance":
                record = advance(record, to, clock)  # type: ignore[arg-type]
            elif kind == "cancel":
                record = cancel(record, clock)
            elif before.status in ("in_progress", "cancelling", "finalizing"):
                record = finish(record, clock, pending, Counts(total=pending), None, None)
            else:
                continue
        except IllegalTransition:
            assert record is before
            continue
        except StateConflict:
            assert before.status not in ("validating", "in_progress", "cancelling", "cancelled")
            continue
        if before.terminal:
            assert record.status == before.status  # terminal is final
        if record.status != before.status:
            assert record.status in ALLOWED[before.status] or (
                before.status == "in_progress" and record.status == "completed"  # via finalizing
            )
            assert getattr(record, f"{record.status}_at") == clock
    stamps = [
        getattr(record, f"{s}_at") for s in STATUSES if getattr(record, f"{s}_at") is not None
    ]
    assert all(t >= T0 for t in stamps)
    if record.status != "validating":
        assert getattr(record, f"{record.status}_at") is not None
    assert record.terminal == (record.status in TERMINAL)
