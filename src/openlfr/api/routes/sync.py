"""The centre's sync endpoints, served only on the mutually authenticated TLS listener (:mod:`openlfr.api.sync`).

A caller is a van, known by the client certificate the centre issued it at registration (checked by
TLS against the centre's CA, then looked up here: a revoked van is refused). The routes are in the
policy table like every other, for the pseudo-role ``van``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from openlfr.api.policy import rule_for
from openlfr.services import audit, outbox, vans

router = APIRouter(prefix="/sync/v1", tags=["sync"])
#: Where the TLS listener puts the client's certificate (DER) for the request.
PEER_CERT = "openlfr_peer_certificate"
VAN_ROLE = "van"


async def van_caller(request: Request) -> str:
    """The registered van presenting this connection's client certificate, allowed by the route's rule.

    Async, like the main application's ``authorize``: the audit actor it sets is then copied into the
    thread that runs the route."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", request.url.path))
    if rule is None or VAN_ROLE not in rule:
        raise HTTPException(403, f"no access rule for {request.method} {request.url.path}: refused")
    der = (request.scope.get("state") or {}).get(PEER_CERT)
    name = vans.van_for_certificate(request.app.state.store, der)
    if name is None:
        raise HTTPException(403, "this client certificate belongs to no registered van, or the van was revoked")
    audit.set_actor(audit.Actor(f"van:{name}", VAN_ROLE, request.client.host if request.client else None))
    return name


VanCaller = Annotated[str, Depends(van_caller)]


class ItemsIn(BaseModel):
    stream: str = Field(min_length=1, max_length=40)
    items: list[dict] = Field(min_length=1, max_length=outbox.BATCH_ITEMS)


@router.get("/state")
def state(request: Request, van: VanCaller) -> dict:
    """The newest sequence number the centre holds of each of the calling van's streams."""
    return {"van": van, "streams": outbox.centre_state(request.app.state.store, van)}


@router.post("/items")
def items(body: ItemsIn, request: Request, van: VanCaller) -> JSONResponse:
    """Store and apply items of one stream in order; 409 with what the centre holds when they leave a gap."""
    result = outbox.receive(request.app.state.store, van, body.stream, body.items)
    return JSONResponse(result, status_code=409 if result["gap"] else 200)
