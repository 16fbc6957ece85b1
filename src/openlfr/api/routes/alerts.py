"""Alerts: the live queue (Server-Sent Events), the images an officer compares, outcomes and legal holds."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from openlfr.api.params import Id, IdFilter
from openlfr.api.security import SignedIn
from openlfr.services import alerts as service
from openlfr.services import audit
from openlfr.services.alerts import alert_payload

router = APIRouter(prefix="/api/v1", tags=["alerts"])
IMAGE_KINDS = ("probe", "frame", "reference")
#: A comment line is sent this often so proxies keep the stream open and closed tabs are noticed.
KEEPALIVE_S = 15.0


class OutcomeIn(BaseModel):
    outcome: str
    adjudication: str | None = None
    note: str | None = None


class HoldIn(BaseModel):
    reason: str


@router.get("/alerts")
def list_alerts(request: Request, deployment: IdFilter = None, pending: bool = False) -> list[dict]:
    return service.list_alerts(request.app.state.store, deployment, pending_only=pending)


@router.get("/alerts/stream")
async def stream(request: Request) -> StreamingResponse:
    """New alerts as Server-Sent Events (``event: alert``, data = the alert as JSON; a repeat sighting
    sends the alert again), and ``event: camera`` / ``event: deployment`` when a state changes."""
    bus = request.app.state.bus
    queue = bus.subscribe()

    async def events():
        try:
            yield ": connected\n\n"
            while True:
                if await request.is_disconnected():
                    break
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if message.get("type") in ("camera", "deployment"):  # a camera's or deployment's state changed
                    yield f"event: {message['type']}\ndata: {json.dumps(message)}\n\n"
                else:
                    yield f"event: alert\nid: {message['id']}\ndata: {json.dumps(message)}\n\n"
        finally:
            bus.unsubscribe(queue)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: Id, request: Request) -> dict:
    payload = alert_payload(request.app.state.store, alert_id)
    audit.record(request.app.state.store, "alert.view", "alert", alert_id)
    return payload


@router.get("/alerts/{alert_id}/images/{kind}")
def alert_image(alert_id: Id, kind: str, request: Request) -> Response:
    """The camera crop (``probe``), the frame with bystanders pixelated, or the watchlist image. Audited; never cached."""
    if kind not in IMAGE_KINDS:
        raise HTTPException(404, f"unknown image kind {kind!r}; one of {', '.join(IMAGE_KINDS)}")
    images = service.alert_images(request.app.state.store, alert_id)
    if kind not in images:
        raise HTTPException(410, f"alert {alert_id}'s {kind} image was deleted under the retention rules")
    return Response(images[kind], media_type="image/jpeg", headers={"Cache-Control": "no-store, private", "Pragma": "no-cache"})


@router.post("/alerts/{alert_id}/outcome")
def outcome(alert_id: Id, body: OutcomeIn, request: Request, user: SignedIn) -> dict:
    return service.record_outcome(
        request.app.state.store, alert_id, body.outcome, by=user.username, adjudication=body.adjudication, note=body.note
    )


@router.post("/alerts/{alert_id}/hold")
def hold(alert_id: Id, body: HoldIn, request: Request, user: SignedIn) -> dict:
    service.set_legal_hold(request.app.state.store, alert_id, user.username, body.reason)
    return alert_payload(request.app.state.store, alert_id)


@router.post("/alerts/{alert_id}/release")
def release(alert_id: Id, body: HoldIn, request: Request, user: SignedIn) -> dict:
    service.lift_legal_hold(request.app.state.store, alert_id, user.username, body.reason)
    return alert_payload(request.app.state.store, alert_id)
