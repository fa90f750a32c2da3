"""Where an upstream lives: a base URL parsed once at start-up into an ``Origin``.

Kept apart from the upstream client so that validating rules (``gateway.rules``) checks URLs
without importing any target code. Policy: only plain ``http(s)://host[:port][/path]`` base URLs;
no credentials, query or fragment, so a configured URL can never smuggle a redirect or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

DEFAULT_PORTS = MappingProxyType({"http": 80, "https": 443})


def is_clean_path(path: str) -> bool:
    """An absolute path of printable ASCII without spaces: safe in an HTTP request line."""
    return path.startswith("/") and path.isascii() and path.isprintable() and " " not in path


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an upstream lives: parsed once at start-up from a target's base URL."""

    scheme: str
    host: str
    port: int
    base_path: str  # e.g. "/v1", no trailing slash; "" for none
    # Connections are pooled per (origin, partition): targets give their own name, so one
    # target's hung calls can never take the connections another target on the same host needs.
    partition: str = ""

    @classmethod
    def parse(cls, url: str) -> Origin:
        """``http(s)://host[:port][/base/path]``; ValueError for anything else."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"malformed URL {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"URL {url!r}: scheme must be http or https")
        host = parts.hostname
        if not host or not host.isascii() or not host.isprintable() or " " in host:
            raise ValueError(f"URL {url!r}: missing or invalid host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(f"URL {url!r}: credentials belong in headers, not in the URL")
        if parts.query or parts.fragment:
            raise ValueError(f"URL {url!r}: a base URL has no query or fragment")
        if port == 0:
            raise ValueError(f"URL {url!r}: port 0")
        path = parts.path.rstrip("/")
        if not is_clean_path(path or "/"):
            raise ValueError(f"URL {url!r}: the path must be printable ASCII without spaces")
        return cls(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], path)
