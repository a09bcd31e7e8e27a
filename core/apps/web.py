"""The web page of ``facepipe serve``: ``GET /`` and its static files under ``/web/``.

The page is plain HTML, CSS and JavaScript shipped inside the package (``facepipe/apps/static``):
no build step, no CDN, no external font, so it works on a machine without internet.  It calls the
service's own JSON routes (``/verify``, ``/analyze``) from the browser; this module adds no route
that touches an image.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: Where the page's files live inside the installed package.
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The page loads only its own files and talks only to this server; images are shown from blob: URLs.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def mount(app: FastAPI) -> None:
    """Serve the page at ``GET /`` and its files under ``/web/`` on ``app``.

    Call it after the JSON routes are registered; a route already registered at ``/`` would win.
    """
    app.mount("/web", StaticFiles(directory=STATIC_DIR), name="web")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers=PAGE_HEADERS)
