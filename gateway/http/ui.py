"""The dashboard at ``/ui``: three static files (HTML, JS, CSS) shipped in ``gateway/ui``.

No build step and nothing from a CDN: the page draws its charts with inline SVG and reads the
same admin API (``/admin/*``, with the admin key the user types in) and ``/metrics`` that JSON
users read. The files carry no data, so they are served without a key; every number on the page
comes from a call that needs the admin key. The files are read once, at start-up.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

from gateway.errors import UnknownRoute

UI_DIR = Path(__file__).resolve().parents[1] / "ui"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
HEADERS = {
    # Only this origin: no inline scripts, no third-party anything.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


def add_ui(app: FastAPI) -> None:
    files = {
        p.name: (p.read_bytes(), TYPES[p.suffix]) for p in UI_DIR.iterdir() if p.suffix in TYPES
    }

    def serve(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise UnknownRoute(f"Unknown request URL: GET /ui/{name}.")
        body, media_type = found
        return Response(body, media_type=media_type, headers=HEADERS)

    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/", include_in_schema=False)
    async def index() -> Response:
        return serve("index.html")

    @app.get("/ui/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        return serve(name)
