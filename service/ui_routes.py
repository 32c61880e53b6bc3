"""The dashboard: ``/ui`` (the operator's runs) and ``/ui/runs/{run_id}`` (one run).

Static pages and scripts shipped in the package (``service/ui/static``), no build step;
they call the JSON API with the bearer token the page keeps in the tab's session storage,
so these routes need no token and serve nothing secret.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

SECURITY_HEADERS = {
    # scripts, styles and calls from this origin only; no inline script can run
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(name: str) -> str:
    return (resources.files("service.ui") / "static" / name).read_text(encoding="utf-8")


class _Static(StaticFiles):
    """The dashboard's files, with its security headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)

        await super().__call__(scope, receive, with_headers)


def ui_routes() -> list[BaseRoute]:
    """The dashboard's routes (left out of the OpenAPI schema: they serve pages)."""
    index, run = _page("index.html"), _page("run.html")

    async def runs_page(_: Request) -> Response:
        return HTMLResponse(index, headers=SECURITY_HEADERS)

    async def run_page(_: Request) -> Response:
        return HTMLResponse(run, headers=SECURITY_HEADERS)

    async def to_ui(_: Request) -> Response:
        return RedirectResponse("/ui", status_code=307)

    return [
        Route("/ui", runs_page, methods=["GET"]),
        Route("/ui/", to_ui, methods=["GET"]),
        Route("/ui/runs/{run_id}", run_page, methods=["GET"]),
        Mount("/ui/static", _Static(packages=[("service.ui", "static")]), name="ui-static"),
    ]
