"""The FastAPI application: REST API under ``/api/v1``, the console and operations pages, the public site.

Everything runs on the embedded defaults (SQLite and the data directory): ``openlfr serve`` needs
no other server. Every route goes through :func:`openlfr.api.security.authorize`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from openlfr import __version__, config
from openlfr.api import docs, health, openapi
from openlfr.api.security import LoginRequired, authorize, parse_trusted_proxies
from openlfr.core import FaceEngine
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.live.manager import AlertBus, LiveManager
from openlfr.live.runner import recover_interrupted
from openlfr.metrics import Metrics
from openlfr.services.alerts import REPEAT_WINDOW_S
from openlfr.services.users import AuthError, PermissionDenied
from openlfr.storage import Store

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


class EngineHolder:
    """Loads a model pack on first need, once per purpose, and shares it: ``"watchlist"`` (enrolment,
    going live) and ``"custody"`` (retrospective search), whose default packs differ."""

    def __init__(self, factory: Callable[[str], FaceEngine]) -> None:
        self._factory = factory
        self._engines: dict[str, FaceEngine] = {}
        self._lock = threading.Lock()

    def __call__(self, purpose: str = "watchlist") -> FaceEngine:
        with self._lock:
            if purpose not in self._engines:
                self._engines[purpose] = self._factory(purpose)
            return self._engines[purpose]


def create_app(
    home: str | Path | None = None,
    pack: str | None = None,
    engine: FaceEngine | None = None,
    store: Store | None = None,
    secure_cookies: bool = True,
    trusted_proxies: str | Sequence[str] | None = None,
    role: str = "central",
    audit_checkpoints: str | Path | None = None,
) -> FastAPI:
    """``trusted_proxies``: proxies whose ``X-Forwarded-For`` names the audited source (default
    ``$OPENLFR_TRUSTED_PROXIES``, else none). ``role``: ``central`` or ``van`` (reported by /readyz and
    /metrics). ``audit_checkpoints``: where the server writes signed audit checkpoints, if anywhere
    (then /readyz requires the signing key)."""
    health.valid_role(role)
    store = store or Store(home)
    metrics = Metrics(role, __version__).bind(store)  # before anything the store's services count

    def load(purpose: str) -> FaceEngine:
        if engine is not None:
            return engine
        from openlfr.models import CUSTODY_PACK, load_engine

        return load_engine(pack or (CUSTODY_PACK if purpose == "custody" else None), home=store.home)

    engines = EngineHolder(load)

    def default_threshold() -> float:
        """The watchlist pack's alert threshold, read from the pack description (no models loaded)."""
        from openlfr.models import resolve_pack

        return engine.alert_threshold if engine is not None else resolve_pack(pack).alert_threshold

    bus = AlertBus()
    live = LiveManager(store, engines, bus, repeat_window_s=config.repeat_window_s(REPEAT_WINDOW_S))
    recover_interrupted(store)  # a deployment a crash left "live" is not shown as live

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        from openlfr.live import fanout

        listener = fanout.start(store, bus)  # PostgreSQL: alerts raised in other server processes reach these consoles
        _app.state.live_listener = listener
        try:
            yield
        finally:
            if listener is not None:
                listener.stop()
            live.shutdown()

    app = FastAPI(
        title="OpenLFR",
        version=__version__,
        description="Accountable live facial recognition: deployments, watchlists, alerts, outcomes, audit.",
        lifespan=lifespan,
        openapi_url=None,  # served below, through the access policy like every other route
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.engines = engines
    app.state.default_threshold = default_threshold
    app.state.bus = bus
    app.state.live = live
    app.state.secure_cookies = secure_cookies
    app.state.trusted_proxies = parse_trusted_proxies(trusted_proxies)
    app.state.role = role
    app.state.metrics = metrics
    app.state.readiness = health.Readiness(store, role, engine=engine, pack=pack, audit_checkpoints=audit_checkpoints)

    @app.exception_handler(LoginRequired)
    async def to_login(_request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    def error(status: int):
        async def handler(request: Request, exc: Exception):
            return JSONResponse({"detail": str(exc)}, status_code=status, headers={"Cache-Control": "no-store"})

        return handler

    app.add_exception_handler(NotFoundError, error(404))
    app.add_exception_handler(StoreError, error(409))
    app.add_exception_handler(AuthError, error(401))
    app.add_exception_handler(PermissionDenied, error(403))
    app.add_exception_handler(OpenLFRError, error(400))
    from openlfr.web import errors as web_errors

    web_errors.install(app)  # the same answers, as styled pages when a browser asks for a page

    from openlfr.api.routes import admin, alerts, auth, deployments, public, rfr, subjects
    from openlfr.web import ops_pages, pages, public_pages, rfr_pages

    guarded = [Depends(authorize)]
    for module in (auth, subjects, deployments, alerts, rfr, admin, public):
        app.include_router(module.router, dependencies=guarded)
    app.include_router(pages.router, dependencies=guarded)
    app.include_router(ops_pages.router, dependencies=guarded)
    app.include_router(rfr_pages.router, dependencies=guarded)
    app.include_router(public_pages.router, dependencies=guarded)
    app.include_router(docs.docs_router(app), dependencies=guarded)
    app.include_router(health.router, dependencies=guarded)  # /healthz, /readyz, /metrics
    docs.mount_static(app)  # Swagger UI's files, before /static would shadow them
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    openapi.install(app)  # security schemes and each route's error answers, from the policy table

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        if not request.url.path.startswith(("/public", "/static", "/api/v1/public")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
