"""HeadCork: a response head leaves with the first body write, in one system call."""

from __future__ import annotations

import asyncio
from typing import cast

from gateway.http.protocol import HeadCork


class Recorder:
    """A stand-in transport that records each write (what the kernel would get per call)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def cork() -> tuple[HeadCork, Recorder]:
    rec = Recorder()
    return HeadCork(cast(asyncio.Transport, rec)), rec


def test_head_and_body_leave_in_one_write() -> None:
    c, rec = cork()
    c.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert rec.writes == []
    c.write(b"{}")
    assert rec.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    c.write(b"more")  # later body chunks pass straight through
    assert rec.writes[-1] == b"more"


def test_continue_passes_through_and_close_flushes_a_held_head() -> None:
    c, rec = cork()
    c.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert rec.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    c.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    c.close()
    assert rec.writes[-1] == b"HTTP/1.1 500 Internal Server Error\r\n\r\n" and rec.closed


def test_flush_sends_a_head_without_body_once_and_other_calls_delegate() -> None:
    c, rec = cork()
    c.write(b"HTTP/1.1 200 OK\r\n\r\n")
    c.flush()
    c.flush()
    assert rec.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    assert c.get_extra_info("peername") == "info:peername"
    assert not c.is_closing()


def test_only_the_first_write_is_held_whatever_later_bodies_look_like() -> None:
    c, rec = cork()
    c.write(b"HTTP/1.1 200 OK\r\n\r\n")
    c.write(b"a")
    c.write(b"HTTP/1.1 looks like a head but is body text")  # passes straight through
    assert rec.writes == [
        b"HTTP/1.1 200 OK\r\n\r\na",
        b"HTTP/1.1 looks like a head but is body text",
    ]
