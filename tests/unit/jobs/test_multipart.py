"""The upload's multipart body: the parts as the SDK (httpx) sends them, and clear refusals."""

from __future__ import annotations

import httpx
import pytest

from gateway.errors import InvalidRequest
from gateway.http.jobs import multipart_fields


def test_the_parts_httpx_sends() -> None:
    content = b'{"a": 1}\r\n{"b": "--x"}\n'
    request = httpx.Request(
        "POST",
        "http://x/v1/files",
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", content, "application/jsonl")},
    )
    body = request.read()
    fields = multipart_fields(request.headers["content-type"], body)
    assert fields["purpose"] == (None, b"batch")
    assert fields["file"] == ("in.jsonl", content)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/form-data", b"--x\r\n\r\n"),  # no boundary
        ("multipart/form-data; boundary=x", b"--x\r\nno blank line--x--"),
    ],
)
def test_unreadable_bodies_are_400(content_type: str, body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        multipart_fields(content_type, body)
