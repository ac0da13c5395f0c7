"""What every page of the portal is served with: its stylesheet and scripts (`/static/...`:
the portal's own files, and htmx from the npm package `htmx.org` the set-up installs), and the
headers that keep a browser strict: a Content-Security-Policy with no inline script or style,
no sniffing of content types, no framing, no referrer sent to other sites."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import structlog
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import FileResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
OWN = {"portal.css": "text/css"}
# the npm packages the set-up installs (services/portal/package.json), beside the sources
NODE_MODULES = Path(__file__).resolve().parents[3] / "node_modules"
VENDOR = {"htmx.min.js": Path("htmx.org/dist/htmx.min.js")}


def serve_assets(app: FastAPI, node_modules: Path = NODE_MODULES) -> None:
    """Serve `/static/<name>` and add the security headers to every answer of `app`."""
    missing = [str(node_modules / p) for p in VENDOR.values() if not (node_modules / p).exists()]
    if missing:  # the pages work without script: say so, do not stop
        log.warning("portal_scripts_missing", missing=missing, hint="npm ci in services/portal")

    app.add_middleware(SecurityHeaders)

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name in OWN:
            body = (resources.files("portal") / "static" / name).read_bytes()
            return Response(body, media_type=OWN[name], headers=_CACHED)
        if name in VENDOR and (node_modules / VENDOR[name]).exists():
            return FileResponse(
                node_modules / VENDOR[name], media_type="text/javascript", headers=_CACHED
            )
        raise HTTPException(404, "no such file")


_CACHED = {"Cache-Control": "public, max-age=3600"}
_SECURITY = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """ASGI middleware: `SECURITY_HEADERS` on every HTTP answer that does not set them itself
    (a pure ASGI one: no task and no stream per request, as Starlette's `BaseHTTPMiddleware`
    would cost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_strict(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in _SECURITY if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_strict)
