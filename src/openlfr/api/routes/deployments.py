"""Deployments through their life cycle: plan, cameras, watchlist build and approval, authorisation,
going live, stopping, closing, and the published record."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from openlfr.api.params import Id
from openlfr.api.security import SignedIn
from openlfr.services import deployments as service
from openlfr.services.records import record_for

router = APIRouter(prefix="/api/v1", tags=["deployments"])


class CameraIn(BaseModel):
    name: str
    source: str = Field(description="Video file, rtsp:// or http(s):// stream, camera index, or image folder.")
    record: bool = False
    min_face_px: float | None = Field(
        default=None, ge=20, le=400,
        description="Smallest face (px wide) this camera must find; default 40. Smaller costs frame rate.",
    )  # fmt: skip


class PlanIn(BaseModel):
    name: str
    location: str
    use_case: str = Field(description=f"One of: {', '.join(service.USE_CASES)}")
    start: datetime
    end: datetime
    threshold: float | None = Field(None, description="Alert threshold; omitted = the watchlist model pack's default.")
    cameras: list[CameraIn]
    latitude: float | None = None
    longitude: float | None = None
    confirm_n: int = 2
    confirm_m: int = 5


class WatchlistIn(BaseModel):
    subjects: list[str] | None = Field(None, description="Subject references; omitted = every subject not past review.")


class NoteIn(BaseModel):
    note: str
    override_reason: str | None = Field(None, description="Needed (and audited) when the estimated FPIR is above 1 in 1,000.")


@router.get("/deployments")
def list_deployments(request: Request) -> list[dict]:
    return service.list_deployments(request.app.state.store)


@router.post("/deployments", status_code=201)
def plan(body: PlanIn, request: Request, user: SignedIn) -> dict:
    deployment_id = service.plan(
        request.app.state.store,
        body.name,
        body.location,
        body.use_case,
        body.start,
        body.end,
        request.app.state.default_threshold() if body.threshold is None else body.threshold,
        [service.CameraSpec(c.name, c.source, c.record, c.min_face_px) for c in body.cameras],
        created_by=user.username,
        latitude=body.latitude,
        longitude=body.longitude,
        confirm_n=body.confirm_n,
        confirm_m=body.confirm_m,
        check_sources=True,
    )
    return service.deployment_detail(request.app.state.store, deployment_id)


@router.get("/deployments/{deployment_id}")
def get_deployment(deployment_id: Id, request: Request) -> dict:
    return service.deployment_detail(request.app.state.store, deployment_id)


@router.post("/deployments/{deployment_id}/watchlist")
def build_watchlist(deployment_id: Id, body: WatchlistIn, request: Request, user: SignedIn) -> dict:
    size = service.build_watchlist(request.app.state.store, deployment_id, body.subjects, built_by=user.username)
    return {"deployment_id": deployment_id, "watchlist_subjects": size, "approved": False}


@router.post("/deployments/{deployment_id}/watchlist/approve")
def approve_watchlist(deployment_id: Id, request: Request, user: SignedIn) -> dict:
    service.approve_watchlist(request.app.state.store, deployment_id, approved_by=user.username)
    return service.deployment_detail(request.app.state.store, deployment_id)


@router.post("/deployments/{deployment_id}/authorise")
def authorise(deployment_id: Id, body: NoteIn, request: Request, user: SignedIn) -> dict:
    service.authorise(
        request.app.state.store, deployment_id, officer=user.username, note=body.note, override_reason=body.override_reason
    )
    return service.deployment_detail(request.app.state.store, deployment_id)


@router.post("/deployments/{deployment_id}/start")
def start(deployment_id: Id, request: Request) -> dict:
    """Go live: the server runs the deployment's cameras until it is stopped or its planned end."""
    from openlfr.services.alerts import alert_payload

    store = request.app.state.store
    run = request.app.state.live.start(deployment_id, lambda alert_id: alert_payload(store, alert_id))
    return run.status()


@router.post("/deployments/{deployment_id}/stop")
def stop(deployment_id: Id, request: Request) -> dict:
    """Stop the cameras (the deployment stays open for outcomes until it is closed)."""
    service.deployment_detail(request.app.state.store, deployment_id)  # 404 for an unknown id
    run = request.app.state.live.stop(deployment_id)
    return run.status() if run else {"deployment_id": deployment_id, "running": False}


@router.post("/deployments/{deployment_id}/close")
def close(deployment_id: Id, request: Request, user: SignedIn) -> dict:
    """Stop the cameras if running, delete the watchlist at once, and publish the record."""
    request.app.state.live.stop(deployment_id)
    return service.close(request.app.state.store, deployment_id, by=user.username)


@router.get("/deployments/{deployment_id}/record")
def record(deployment_id: Id, request: Request) -> dict:
    with request.app.state.store.session() as s:
        return record_for(s, deployment_id)


@router.get("/deployments/{deployment_id}/cameras")
def cameras(deployment_id: Id, request: Request) -> list[dict]:
    return service.deployment_detail(request.app.state.store, deployment_id)["cameras"]


@router.post("/deployments/{deployment_id}/cameras", status_code=201)
def add_camera(deployment_id: Id, body: CameraIn, request: Request, user: SignedIn) -> dict:
    service.add_camera(
        request.app.state.store, deployment_id, service.CameraSpec(body.name, body.source, body.record), by=user.username
    )
    return service.deployment_detail(request.app.state.store, deployment_id)
