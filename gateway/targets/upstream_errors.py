"""The upstream client's exception tree (re-exported by ``gateway.targets.upstream``).

Use these to tell *how* an upstream call failed at the transport level; an HTTP error status is
not an exception here (the caller classifies statuses). Invalid arguments (a header with CR/LF, a
non-ASCII path) are programming errors and raise ``ValueError`` instead.

    UpstreamError
    ├── ConnectError       could not connect: refused, DNS, TLS handshake, pool closed
    │   └── ConnectTimeout no connection (or free pool slot) within the connect timeout
    ├── ReadTimeout        no (more) response bytes within the read timeout
    └── ProtocolError      malformed response, or the connection closed mid-response
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of every error the upstream client raises for a failed call."""


class ConnectError(UpstreamError):
    """No usable connection: refused, unreachable, DNS failure, TLS handshake, pool closed."""


class ConnectTimeout(ConnectError):
    """Connecting (or waiting for a free connection at the pool bound) took too long."""


class ReadTimeout(UpstreamError):
    """The response headers, or the next body bytes, did not arrive within the read timeout."""


class ProtocolError(UpstreamError):
    """The response was malformed, or the connection closed before the response was complete."""
