"""The web pages: the demo site with the chat widget, the agent and editor consoles.

Front-end libraries come from npm at install time (`make` runs `npm ci`) and are
served from this process, so nothing is fetched from a CDN at run time. The
consoles are plain JavaScript modules under ``web/static/console/``; they talk to
the JSON API with the ``firstline_session`` cookie that ``POST /api/auth/login`` sets.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from firstline.config import REPO_ROOT

WEB_DIR = Path(__file__).parent / "web"
NODE_MODULES = REPO_ROOT / "node_modules"
#: The only files served from node_modules, by the name the pages use.
VENDOR_FILES = {
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
    "marked.min.js": "marked/lib/marked.umd.js",
    "purify.min.js": "dompurify/dist/purify.min.js",
    "diff.min.js": "diff/dist/diff.min.js",
}
#: The consoles' pages: no caching (they change with the code), no framing, no inline script.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def demo_site(request: Request, lang: str = "en") -> HTMLResponse:
    """A plain demo page that embeds the widget with one script tag."""
    settings = request.app.state.settings
    language = lang if lang in ("en", "lv", "ru") else "en"
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{lang}}", language).replace(
        "{{socket_url}}", html.escape(settings.public_socket_url, quote=True)
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _console(name: str) -> HTMLResponse:
    return HTMLResponse((WEB_DIR / f"{name}.html").read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/agent", response_class=HTMLResponse)
def agent_console() -> HTMLResponse:
    """The agents' console: the live queue and conversations (log in on the page)."""
    return _console("agent")


@router.get("/editor", response_class=HTMLResponse)
def editor_console() -> HTMLResponse:
    """The editors' console: articles, content gaps and the dashboard (log in on the page)."""
    return _console("editor")


@router.get("/vendor/{name}")
def vendor(name: str) -> FileResponse:
    relative = VENDOR_FILES.get(name)
    if relative is None or not (NODE_MODULES / relative).is_file():
        raise HTTPException(404, f"{name} is not installed; run `make install`")
    return FileResponse(NODE_MODULES / relative, media_type="text/javascript")


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
