"""LineWriter: the lines of one event-loop turn leave in one write, whole, within that turn."""

from __future__ import annotations

import asyncio
import contextlib
import io

from gateway.request_log import MAX_QUEUED_CHARS, LineWriter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_lines_of_one_turn_share_one_write_and_leave_in_that_turn() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)

    async def turn() -> None:
        for k in range(50):
            writer.write(f'{{"n":{k}}}\n')
        assert stream.writes == 0  # queued, not written yet
        await asyncio.sleep(0)  # the end of this turn
        assert stream.writes == 1

    asyncio.run(turn())
    assert stream.getvalue().splitlines() == [f'{{"n":{k}}}' for k in range(50)]


def test_a_full_queue_is_written_at_once_and_outside_a_loop_lines_go_straight_out() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.write("x" * MAX_QUEUED_CHARS + "\n")
    assert stream.writes == 1
    writer.write("cli line\n")  # no running loop: written at once
    assert stream.getvalue().endswith("cli line\n") and stream.writes == 2
    writer.flush()  # nothing queued: no empty write
    assert stream.writes == 2


def test_a_flush_left_scheduled_on_an_ended_loop_does_not_stop_the_writer() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    loop = asyncio.new_event_loop()

    async def write_and_die() -> None:
        writer.write("first\n")  # schedules a flush on this loop...
        raise KeyboardInterrupt  # ...which stops at once, before running it

    with contextlib.suppress(KeyboardInterrupt):
        loop.run_until_complete(write_and_die())
    loop.close()

    async def later() -> None:
        writer.write("second\n")
        await asyncio.sleep(0)

    asyncio.run(later())
    assert stream.getvalue() == "first\nsecond\n"
