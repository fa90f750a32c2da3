"""A real HTTP server that records what is POSTed to it: the operator's alert webhook in tests.

The ``receiver`` fixture is registered in tests/conftest.py; import ``Receiver`` where needed. It
fixture yields the URL, ``Receiver.bodies`` holds the bodies, ``Receiver.status`` the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


class Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.bodies = []
    Receiver.status = 204
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/tiergate"
    finally:
        server.shutdown()
        server.server_close()
