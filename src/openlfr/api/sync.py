"""The centre's sync listener: its own small application on its own port, over mutually
authenticated TLS (``openlfr serve --sync-port``).

uvicorn does the TLS (the centre's server certificate; client certificates required and checked
against the centre's CA). Which van is calling is then read from the connection's certificate:
:class:`PeerCertificateH11` puts it in the request's state, where
:func:`openlfr.api.routes.sync.van_caller` finds it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from openlfr.api.routes import sync as routes
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.services import outbox, vans
from openlfr.storage import Store


class PeerCertificateH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, adding the TLS client certificate (DER) to every request's state."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app_state = {**self.app_state, routes.PEER_CERT: der}


def create_sync_app(store: Store) -> FastAPI:
    app = FastAPI(title="OpenLFR sync", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store = store

    def error(status: int):
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handler

    app.add_exception_handler(outbox.SyncRefused, error(403))
    app.add_exception_handler(NotFoundError, error(404))
    app.add_exception_handler(StoreError, error(409))
    app.add_exception_handler(OpenLFRError, error(400))
    app.include_router(routes.router)
    return app


def sync_server(
    store: Store, host: str, port: int, keys: str | os.PathLike[str] | None = None, log_level: str = "warning"
) -> uvicorn.Server:
    """The listener, configured (not started): TLS with client certificates required."""
    key, cert, ca = vans.centre_tls_files(store, keys)
    config = uvicorn.Config(
        create_sync_app(store),
        host=host,
        port=port,
        ssl_keyfile=str(key),
        ssl_certfile=str(cert),
        ssl_ca_certs=str(ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        http=PeerCertificateH11,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
    )
    return uvicorn.Server(config)


class SyncListener:
    """The listener in a thread of ``openlfr serve`` (uvicorn leaves signals to the main thread's server)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.run, name="sync-listener", daemon=True)

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OpenLFRError("the sync listener did not start (is its port in use?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
