"""The engine's web dashboard: static files shipped in the package, served at / and /static/.

Plain HTML, CSS and JavaScript written for Ferry (no CDN, no build step, nothing fetched from
outside the machine). The page itself holds no data and needs no token; everything it shows
comes from the REST API with the bearer token the user typed in (kept in sessionStorage).
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the dashboard: GET / is the page, /static/... its script and style sheet."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")
