"""Running the system: live status and camera views, retention and legal holds, records, audit, users."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from openlfr.api.params import Id, Limit
from openlfr.api.security import SignedIn
from openlfr.services import audit, retention, users
from openlfr.services.alerts import alert_summary
from openlfr.services.deployments import list_deployments
from openlfr.services.records import record_for, to_csv
from openlfr.storage.models import Alert

router = APIRouter(prefix="/api/v1")


# --- Live -----------------------------------------------------------------------------------------


@router.get("/live", tags=["live"])
def live_status(request: Request) -> list[dict]:
    return request.app.state.live.status()


@router.get("/live/{deployment_id}/cameras/{camera}/view.jpg", tags=["live"])
def camera_view(deployment_id: Id, camera: str, request: Request) -> Response:
    """The operator's view: the newest frame with every face that raised no alert pixelated."""
    data = request.app.state.live.view(deployment_id, camera)
    if data is None:
        raise HTTPException(404, f"no live view for camera {camera!r} of deployment {deployment_id} (not live?)")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store, private"})


# --- Retention and legal holds ----------------------------------------------------------------------


@router.post("/retention/run", tags=["retention"])
def run_retention(request: Request) -> dict:
    return retention.run(request.app.state.store).as_dict()


@router.get("/retention/log", tags=["retention"])
def retention_log(request: Request, limit: Limit = 100) -> list[dict]:
    return retention.deletion_log(request.app.state.store, limit=limit)


@router.get("/retention/holds", tags=["retention"])
def legal_holds(request: Request) -> list[dict]:
    with request.app.state.store.session() as s:
        held = s.scalars(select(Alert).where(Alert.legal_hold.is_(True)).order_by(Alert.id))
        return [{**alert_summary(a), "hold_reason": a.hold_reason, "hold_by": a.hold_by} for a in held]


# --- Deployment records ------------------------------------------------------------------------------


@router.get("/records", tags=["records"])
def records(request: Request, format: str = "json"):
    store = request.app.state.store
    with store.session() as s:
        rows = [record_for(s, d["id"]) for d in list_deployments(store) if d["status"] == "closed"]
    if format == "csv":
        return PlainTextResponse(to_csv(rows), media_type="text/csv")
    return rows


# --- Audit ---------------------------------------------------------------------------------------------


def _search(request: Request, actor, action, record_type, record_id, since, until, limit) -> list[dict]:
    return audit.search(
        request.app.state.store,
        actor=actor,
        action=action,
        record_type=record_type,
        record_id=record_id,
        since=since,
        until=until,
        limit=min(limit, 10_000),
    )


@router.get("/audit", tags=["audit"])
def audit_search(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 200,
) -> list[dict]:
    events = _search(request, actor, action, record_type, record_id, since, until, limit)
    audit.record(request.app.state.store, "audit.search", details={"actor": actor, "action": action, "results": len(events)})
    return events


@router.get("/audit/export", tags=["audit"])
def audit_export(
    request: Request,
    format: str = "csv",
    actor: str | None = None,
    action: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 10_000,
) -> Response:
    events = _search(request, actor, action, record_type, record_id, since, until, limit)
    audit.record(request.app.state.store, "audit.export", details={"format": format, "events": len(events)})
    if format == "json":
        body, media, ext = json.dumps(events, indent=2), "application/json", "json"
    else:
        body, media, ext = audit.to_csv(events), "text/csv", "csv"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="openlfr-audit.{ext}"'})


@router.get("/audit/verify", tags=["audit"])
def audit_verify(request: Request) -> dict:
    return audit.verify_configured(request.app.state.store).as_dict()


# --- Users and tokens ----------------------------------------------------------------------------------
# An administrator manages accounts and may list and revoke anyone's tokens, but never mints one for
# another account: a token is issued only against its holder's own password (``POST /api/v1/me/tokens``).


class NewUser(BaseModel):
    username: str
    display_name: str
    role: str
    password: str


class ActiveIn(BaseModel):
    active: bool


class RoleIn(BaseModel):
    role: str


@router.get("/users", tags=["users"])
def list_users(request: Request) -> list[dict]:
    return users.list_users(request.app.state.store)


@router.post("/users", tags=["users"], status_code=201)
def create_user(body: NewUser, request: Request, user: SignedIn) -> dict:
    created = users.create_user(
        request.app.state.store, body.username, body.display_name, body.role, body.password, created_by=user.username
    )
    return created.__dict__


@router.post("/users/{user_id}/active", tags=["users"])
def set_active(user_id: Id, body: ActiveIn, request: Request, user: SignedIn) -> dict:
    users.set_active(request.app.state.store, user_id, body.active, by=user.username)
    return users.get_user(request.app.state.store, user_id)


@router.post("/users/{user_id}/role", tags=["users"])
def set_role(user_id: Id, body: RoleIn, request: Request, user: SignedIn) -> dict:
    users.set_role(request.app.state.store, user_id, body.role, by=user.username)
    return users.get_user(request.app.state.store, user_id)


@router.post("/users/{user_id}/unlock", tags=["users"])
def unlock(user_id: Id, request: Request, user: SignedIn) -> dict:
    users.unlock(request.app.state.store, user_id, by=user.username)
    return users.get_user(request.app.state.store, user_id)


@router.get("/tokens", tags=["users"])
def list_tokens(request: Request) -> list[dict]:
    return users.list_tokens(request.app.state.store)


@router.delete("/tokens/{token_id}", tags=["users"])
def revoke_token(token_id: Id, request: Request, user: SignedIn) -> dict:
    users.revoke_token(request.app.state.store, token_id, by=user.username)
    return {"revoked": token_id}
