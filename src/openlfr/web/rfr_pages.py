"""The examiners' pages: start a case-bound search, choose the probe face, review candidates one by
one (probe beside candidate), confirm a colleague's possible matches, export the case report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from openlfr.api.params import Id
from openlfr.api.routes.subjects import read_uploads
from openlfr.api.security import current_user
from openlfr.errors import OpenLFRError
from openlfr.services import rfr
from openlfr.web.pages import redirect
from openlfr.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/rfr")
def searches(request: Request, case: str | None = None):
    store = request.app.state.store
    try:
        from openlfr.services import custody

        gallery = custody.stats(store)
    except (ImportError, OpenLFRError):
        gallery = None
    return page(request, "rfr.html", searches=rfr.list_searches(store, case or None), gallery=gallery,
                default_k=rfr.DEFAULT_TOP_K, max_k=rfr.MAX_TOP_K)  # fmt: skip


@router.post("/rfr/searches")
def start(
    request: Request,
    probe: Annotated[UploadFile, File()],
    case_reference: Annotated[str, Form()] = "",
    justification: Annotated[str, Form()] = "",
    top_k: Annotated[str, Form()] = str(rfr.DEFAULT_TOP_K),
):
    user = current_user(request)
    try:
        ((name, data),) = read_uploads([probe])
        try:
            k = int(top_k)
        except ValueError:  # not a number, or one too long to convert: the service names the range
            k = -1
        result = rfr.start_search(request.app.state.store, request.app.state.engines("custody"), data, name, case_reference,
                                  justification, user.username, k)  # fmt: skip
    except OpenLFRError as exc:
        return redirect("/rfr", error=str(exc))
    return redirect(f"/rfr/searches/{result['id']}")


@router.get("/rfr/searches/{search_id}")
def search(search_id: Id, request: Request):
    user = current_user(request)
    detail = rfr.search_detail(request.app.state.store, search_id, user.username)
    pending_confirmation = [c for c in detail["candidates"] if c["awaiting_your_confirmation"]]
    return page(request, "rfr_search.html", s=detail, decisions=rfr.DECISIONS, confirmations=rfr.CONFIRMATIONS,
                pending_confirmation=pending_confirmation)  # fmt: skip


@router.post("/rfr/searches/{search_id}/face")
def choose(search_id: Id, request: Request, face: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        rfr.choose_face(request.app.state.store, request.app.state.engines("custody"), search_id, int(face) - 1, user.username)
    except (OpenLFRError, ValueError) as exc:
        return redirect(f"/rfr/searches/{search_id}", error=str(exc))
    return redirect(f"/rfr/searches/{search_id}", flash="Search run: review the candidates below.")


@router.post("/rfr/searches/{search_id}/complete")
def complete(search_id: Id, request: Request):
    user = current_user(request)
    try:
        rfr.complete_review(request.app.state.store, search_id, user.username)
    except OpenLFRError as exc:
        return redirect(f"/rfr/searches/{search_id}", error=str(exc))
    return redirect(f"/rfr/searches/{search_id}", flash="Review complete: unmarked candidates recorded as not a match.")


@router.get("/rfr/candidates/{candidate_id}")
def candidate(candidate_id: Id, request: Request):
    user = current_user(request)
    c = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    can_confirm = c["awaiting_your_confirmation"]  # the independence rule lives in services.rfr
    can_decide = c["confirmation"] is None and not can_confirm
    return page(request, "rfr_candidate.html", c=c, can_confirm=can_confirm, can_decide=can_decide,
                decisions=rfr.DECISIONS, confirmations=rfr.CONFIRMATIONS)  # fmt: skip


@router.post("/rfr/candidates/{candidate_id}/decision")
def decide(candidate_id: Id, request: Request, decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        result = rfr.decide(request.app.state.store, candidate_id, decision, user.username, note or None)
        detail = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    except OpenLFRError as exc:
        return redirect(f"/rfr/candidates/{candidate_id}", error=str(exc))
    return redirect(f"/rfr/searches/{detail['search_id']}", flash=f"Rank {result['rank']}: {rfr.DECISIONS[decision]} recorded.")


@router.post("/rfr/candidates/{candidate_id}/confirmation")
def confirm(candidate_id: Id, request: Request, agree: Annotated[str, Form()] = "", note: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        result = rfr.confirm(request.app.state.store, candidate_id, agree == "yes", user.username, note or None)
        detail = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    except OpenLFRError as exc:
        return redirect(f"/rfr/candidates/{candidate_id}", error=str(exc))
    label = rfr.CONFIRMATIONS[result["confirmation"]]
    return redirect(f"/rfr/searches/{detail['search_id']}", flash=f"Rank {result['rank']}: {label}.")
