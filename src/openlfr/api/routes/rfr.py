"""Retrospective searches of the custody image database and their review by examiners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from openlfr.api.params import Id, Number
from openlfr.api.security import SignedIn
from openlfr.api.uploads import read_uploads
from openlfr.services import rfr

router = APIRouter(prefix="/api/v1", tags=["retrospective search"])
NO_STORE = {"Cache-Control": "no-store, private"}


class FaceIn(BaseModel):
    face: int  # 1-based, as shown to the examiner


class DecisionIn(BaseModel):
    decision: str
    note: str | None = None


class ConfirmationIn(BaseModel):
    agree: bool
    note: str | None = None


@router.get("/rfr/searches")
def list_searches(request: Request, case: str | None = None) -> list[dict]:
    return rfr.list_searches(request.app.state.store, case)


@router.post("/rfr/searches", status_code=201)
def start_search(
    request: Request,
    case_reference: Annotated[str, Form()],
    justification: Annotated[str, Form()],
    probe: Annotated[UploadFile, File()],
    user: SignedIn,
    top_k: Annotated[int, Form()] = rfr.DEFAULT_TOP_K,
) -> dict:
    """Search with an image (one face, or choose among several) or a CCTV clip (best view of each person)."""
    ((name, data),) = read_uploads([probe])
    engine = request.app.state.engines("custody")
    return rfr.start_search(request.app.state.store, engine, data, name, case_reference, justification, user.username, top_k)


@router.get("/rfr/searches/{search_id}")
def get_search(search_id: Id, request: Request, user: SignedIn) -> dict:
    """The search and its candidates; a possible match awaiting the caller's independent confirmation
    comes without the first examiner's note."""
    return rfr.search_detail(request.app.state.store, search_id, user.username)


@router.post("/rfr/searches/{search_id}/face")
def choose_face(search_id: Id, body: FaceIn, request: Request, user: SignedIn) -> dict:
    return rfr.choose_face(request.app.state.store, request.app.state.engines("custody"), search_id, body.face - 1, user.username)


@router.get("/rfr/searches/{search_id}/probe/{number}")
def probe_image(search_id: Id, number: Number, request: Request) -> Response:
    """Face ``number`` (1-based) offered from the probe, or, once chosen, the probe face (number 1)."""
    crops = rfr.probe_images(request.app.state.store, search_id)
    if not 1 <= number <= len(crops):
        from openlfr.errors import NotFoundError

        raise NotFoundError(f"search {search_id} has {len(crops)} probe face(s); there is no face {number}")
    return Response(crops[number - 1], media_type="image/jpeg", headers=NO_STORE)


@router.post("/rfr/searches/{search_id}/complete")
def complete(search_id: Id, request: Request, user: SignedIn) -> dict:
    return rfr.complete_review(request.app.state.store, search_id, user.username)


@router.get("/rfr/searches/{search_id}/report", response_class=HTMLResponse)
def report(search_id: Id, request: Request, user: SignedIn) -> HTMLResponse:
    """The case report (HTML, self-contained). Export is audited."""
    body = rfr.case_report_html(request.app.state.store, search_id, user.username)
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="rfr-search-{search_id}-report.html"'}
    return HTMLResponse(body, headers=headers)


@router.get("/rfr/candidates/{candidate_id}")
def candidate(candidate_id: Id, request: Request, user: SignedIn) -> dict:
    return rfr.candidate_detail(request.app.state.store, candidate_id, user.username)


@router.get("/rfr/candidates/{candidate_id}/image")
def candidate_image(candidate_id: Id, request: Request) -> Response:
    return Response(rfr.candidate_image(request.app.state.store, candidate_id), media_type="image/jpeg", headers=NO_STORE)


@router.post("/rfr/candidates/{candidate_id}/decision")
def decide(candidate_id: Id, body: DecisionIn, request: Request, user: SignedIn) -> dict:
    return rfr.decide(request.app.state.store, candidate_id, body.decision, user.username, body.note)


@router.post("/rfr/candidates/{candidate_id}/confirmation")
def confirm(candidate_id: Id, body: ConfirmationIn, request: Request, user: SignedIn) -> dict:
    return rfr.confirm(request.app.state.store, candidate_id, body.agree, user.username, body.note)


@router.get("/custody/stats", tags=["custody"])
def custody_stats(request: Request) -> dict:
    """How many custody records and images are searchable, and the imports that brought them."""
    from openlfr.services import custody

    return custody.stats(request.app.state.store)
