"""The OpenAPI document and its Swagger UI page, served from this server alone.

FastAPI's own docs page loads Swagger UI from a CDN with an inline script, which the pages'
Content-Security-Policy (``script-src 'self'``, no inline script) blocks, leaving the page blank,
and which would also make staff browsers fetch code from an outside host. Here Swagger UI's files
come from the ``fastapi-offline`` package (it ships them; see pyproject.toml) and the start-up code
is a static file (``api/static/swagger-init.js``), so the page works under the strict policy.
The document and the page are ordinary routes so the policy table governs them (FastAPI's
built-in ones bypass every dependency); the static files are public code like ``/static``.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
#: Swagger UI's own files (swagger-ui-bundle.js, swagger-ui.css), from the package that ships them.
SWAGGER_UI_DIR = Path(str(files("fastapi_offline") / "static"))
SWAGGER_UI_URL = "/static/swagger-ui"
#: This project's files for the docs page (the start-up script).
DOCS_STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_STATIC_URL = "/static/api-docs"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{swagger}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}" data-csrf-token="{csrf}"></div>
<script src="{swagger}/swagger-ui-bundle.js"></script>
<script src="{own}/swagger-init.js"></script>
</body>
</html>
"""


def docs_html(title: str, csrf: str | None) -> str:
    """The docs page: no inline script or style, nothing from another host."""
    return _PAGE.format(
        title=html.escape(title),
        swagger=SWAGGER_UI_URL,
        own=DOCS_STATIC_URL,
        openapi=OPENAPI_URL,
        csrf=html.escape(csrf or "", quote=True),
    )


def docs_router(app: FastAPI) -> APIRouter:
    """The OpenAPI document and its docs page as policy-governed routes."""
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_URL)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get(DOCS_URL)
    def docs_page(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_html(f"{app.title} API", getattr(request.state, "csrf", None)))

    return router


def mount_static(app: FastAPI) -> None:
    """Serve Swagger UI's files and ours; call before ``/static`` is mounted, which would shadow them."""
    app.mount(SWAGGER_UI_URL, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=DOCS_STATIC_DIR), name="api-docs")
