"""The application: every route, the error handlers, the OpenAPI
description (``/openapi.json``, from each endpoint's docstring) and its page
(``/docs``).

    from chronoledger.server import ServeConfig, create_app

    app = create_app(ServeConfig(world="world.db", runs="runs/"))   # any ASGI server runs it
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from chronoledger._version import __version__
from chronoledger.errors import ChronoledgerError, RequestError
from chronoledger.server import api_data, api_runs, api_runtime, api_tables, api_world, pages
from chronoledger.server.config import ServeConfig
from chronoledger.server.http import Json, error_response, library_error
from chronoledger.server.stores import Stores

log = logging.getLogger("chronoledger.server")

OPENAPI_BASE = {"openapi": "3.0.3",
                "info": {"title": "chronoledger", "version": __version__,
                         "description": "The HTTP API of `chronoledger serve` (docs/server.md). Every answer is "
                                        'JSON: {"ok": true, ...} or {"ok": false, "error": "..."}; writes need '
                                        "Authorization: Bearer TOKEN."},
                "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}}}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """What every operation has in common, added to what its docstring says:
    its answers (``{"ok": true, ...}``, or a 4xx ``{"ok": false, "error"}``),
    the token on the writes, and each path parameter of its path."""
    for path, ops in spec.get("paths", {}).items():
        names = re.findall(r"{([^}:]+)(?::[^}]*)?}", path)
        for method, op in ops.items():
            op.setdefault("responses", {
                "201" if method == "post" and path.endswith("/rows") else "200":
                    {"description": 'done: {"ok": true, ...}'},
                "4XX": {"description": 'refused: {"ok": false, "error": "what failed: why"}'}})
            if method in ("post", "patch") and path not in ("/api/data/query", "/api/tables/infer"):
                op.setdefault("security", [{"token": []}])
            if path == "/api/tables/infer":
                op.setdefault("security", [{}, {"token": []}])       # the token only to propose
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            for name in names:
                if name not in declared:
                    op.setdefault("parameters", []).append(
                        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    return spec


def create_app(config: ServeConfig) -> Starlette:
    """The ASGI application serving ``config``'s stores (see docs/server.md)."""
    stores = Stores(config)
    schemas = SchemaGenerator(OPENAPI_BASE)

    def describe() -> dict[str, Any]:
        return complete(schemas.get_schema(routes=app.routes))

    def openapi(request: Request) -> Response:
        return Json(describe())

    def docs(request: Request) -> HTMLResponse:
        spec = describe()
        rows = []
        for path, ops in sorted(spec.get("paths", {}).items()):
            for method, op in ops.items():
                rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                            f"<td>{html.escape(str(op.get('summary', '')))}</td></tr>")
        body = (f"<h1>API</h1><p>The machine-readable description: <a href='/openapi.json'>/openapi.json</a> "
                f"(OpenAPI 3).</p><div class=panel><table>{''.join(rows)}</table></div>")
        return pages._page("/docs", "API", body)

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return error_response(exc.status, str(exc), **exc.extra)

    async def on_library_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ChronoledgerError)
        return library_error(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (the API: /openapi.json)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message)

    async def on_other_error(request: Request, exc: Exception) -> Response:
        log.exception("serve: %s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stores.hold()
        try:
            yield
        finally:
            stores.close()

    routes: list[Any] = [*api_data.routes(stores), *api_tables.routes(stores), *api_runtime.routes(stores),
                         *api_runs.routes(stores), *api_world.routes(stores), *pages.routes(stores),
                         Route("/openapi.json", openapi, include_in_schema=False),
                         Route("/docs", docs, include_in_schema=False)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(GZipMiddleware, minimum_size=4096)],
                    exception_handlers={RequestError: on_refused, ChronoledgerError: on_library_error,
                                        HTTPException: on_http_error, Exception: on_other_error})
    app.state.stores = stores
    return app
